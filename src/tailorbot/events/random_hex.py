"""Random hex digits for new ids, drawn from the operating system's CSPRNG in blocks.

``secrets.token_hex`` makes one ``getrandom`` call per id, and CPython releases the
interpreter lock around that call: in a server that decides on its event loop beside the
decision recorder's thread, every new id handed the lock to the other thread and then waited
to get it back. One call per block of ``block_bytes`` serves hundreds of ids. The bytes are
``os.urandom``'s either way; a forked child drops the block it inherited, so a parent and its
child never hand out the same digits.
"""

from __future__ import annotations

import os
import weakref
from collections import deque


class RandomHex:
    """``nbytes`` random bytes as ``2 * nbytes`` hex digits per call.

    Safe to call from several threads with no lock: the digits wait in a deque, whose
    ``popleft`` is atomic, and threads that find it empty at once each draw a block of their
    own (``with`` on an uncontended lock took 0.4 µs, more than the rest of a draw). Safe in
    a forked child: it drops the block it inherited and draws its own.

    >>> draw = RandomHex(10)
    >>> a, b = draw(), draw()
    >>> len(a), a != b, int(a, 16) >= 0, draw.nbytes
    (20, True, True, 10)
    """

    def __init__(self, nbytes: int, block_bytes: int = 4000) -> None:
        if nbytes < 1:
            raise ValueError(f"nbytes must be >= 1, got {nbytes}")
        if block_bytes < nbytes:
            raise ValueError(f"block_bytes must be >= nbytes ({nbytes}), got {block_bytes}")
        self.nbytes = nbytes
        self.block_bytes = block_bytes
        self._chunks: deque[str] = deque()
        self._watching_forks = False

    def __call__(self) -> str:
        try:
            return self._chunks.popleft()
        except IndexError:
            return self._refill()

    def _watch_forks(self) -> None:
        """On first use, not at construction: a module-level instance registers nothing at
        import. Before the first block, so that no fork can find one unwatched; marked only
        once registered (two threads may both register: harmless). A weak reference, so an
        instance can still be collected."""
        ref = weakref.WeakMethod(self._forget)
        os.register_at_fork(after_in_child=lambda: (forget := ref()) and forget())
        self._watching_forks = True

    def _refill(self) -> str:
        """A new block: its first digits for this call, the rest queued (after any that
        another thread queued meanwhile)."""
        if not self._watching_forks:
            self._watch_forks()
        digits = os.urandom(self.block_bytes - self.block_bytes % self.nbytes).hex()
        width = 2 * self.nbytes
        chunks = [digits[i : i + width] for i in range(0, len(digits), width)]
        self._chunks.extend(chunks[1:])
        return chunks[0]

    def _forget(self) -> None:
        """In a forked child: the parent goes on with the block, the child starts a new one."""
        self._chunks = deque()
