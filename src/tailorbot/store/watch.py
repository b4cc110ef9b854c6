"""Whether a reader that polls shared counters can skip a read (``CounterStore.stamps``).

A server re-reads the shared article counters and the bandit's statistics every second, off
the request path but holding the interpreter lock: with some 5,000 counters a read costs
milliseconds, and a rebuild from them more. Most seconds nothing changed.

>>> import tempfile
>>> from tailorbot.store import open_stores
>>> stores = open_stores(f"sqlite:///{tempfile.mkdtemp()}/store.db")
>>> watch = CounterWatch(stores.counters, ("recs:intent",))
>>> stamps = watch.changed()  # never read: read now
>>> stamps is not None
True
>>> watch.read(stamps)  # the read (after changed()) succeeded
>>> watch.changed() is None  # nothing written since
True
>>> stores.counters.increment("recs:intent", {"card_arrival|issues": 1.0})
>>> watch.changed() is not None
True
>>> stores.close()
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from tailorbot.store.base import CounterStore

# A full read at least this often whatever the stamps say: a process of an older release
# (during a rolling upgrade) adds to the counters without raising their stamps.
FULL_READ_S = 60.0

_UNREAD = (-1,)  # stamps no store returns: the first poll reads


class CounterWatch:
    """Polls the stamps of ``namespaces`` of ``store`` for one reader.

    :meth:`changed` before each read: None when nothing was written since the last read
    that :meth:`read` confirmed, else the stamps to confirm once this read has succeeded
    (a failed read is retried at the next poll). Stamps are read before the contents, so a
    write that lands between the two raises them and the next poll reads again: a
    skipped read never hides a change. A store without stamps (None) is always read.
    """

    def __init__(
        self, store: CounterStore, namespaces: Sequence[str], full_read_s: float = FULL_READ_S
    ) -> None:
        self.store = store
        self.namespaces = tuple(namespaces)
        self.full_read_s = full_read_s
        self._seen: tuple[int, ...] = _UNREAD
        self._read_at = -float("inf")

    def changed(self) -> tuple[int, ...] | None:
        """None: the contents are those of the last confirmed read. Otherwise the stamps
        now (``()`` where the store keeps none), to pass to :meth:`read` after reading."""
        stamps = self.store.stamps(self.namespaces)
        if stamps is None:
            return ()
        fresh = time.monotonic() - self._read_at < self.full_read_s
        return None if fresh and stamps == self._seen else stamps

    def read(self, stamps: tuple[int, ...]) -> None:
        """The read after :meth:`changed` returned ``stamps`` succeeded."""
        self._seen = stamps if stamps else _UNREAD
        self._read_at = time.monotonic()
