"""RandomHex: ids' random digits from the OS's CSPRNG, one call per block."""

from __future__ import annotations

import gc
import os
import signal
import subprocess
import sys
import threading
import weakref
from collections.abc import Callable

import pytest

from tailorbot.events import random_hex
from tailorbot.events.random_hex import RandomHex
from tailorbot.events.schema import new_event_id


def test_one_urandom_call_per_block(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    urandom = os.urandom

    def counted(size: int) -> bytes:
        calls.append(size)
        return urandom(size)

    monkeypatch.setattr(random_hex.os, "urandom", counted)
    draw = RandomHex(10, block_bytes=4005)  # 400 chunks; the odd 5 bytes are not drawn
    drawn = [draw() for _ in range(1000)]
    assert calls == [4000, 4000, 4000]
    assert all(len(d) == 20 and int(d, 16) >= 0 for d in drawn)
    assert len(set(drawn)) == 1000


def test_concurrent_threads_never_get_the_same_digits() -> None:
    draw = RandomHex(8, block_bytes=64)  # 8 a block: refills race often
    results: list[list[str]] = [[] for _ in range(8)]
    start = threading.Barrier(8)

    def take(out: list[str]) -> None:
        start.wait()
        out.extend(draw() for _ in range(5000))

    threads = [threading.Thread(target=take, args=(out,)) for out in results]
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # threads switch between any two steps
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        sys.setswitchinterval(interval)
    everything = [d for out in results for d in out]
    assert len(everything) == 40_000
    assert len(set(everything)) == 40_000


def _drawn_in_child(draw: RandomHex, meanwhile: Callable[[], None] = lambda: None) -> str:
    """The digits ``draw`` gives in a forked child (``meanwhile`` runs in the parent while
    the child draws). A child stuck on a lock is ended by an alarm and gives nothing."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its next digits, then out without cleanup
        try:
            signal.alarm(10)
            os.write(write, draw().encode())
        finally:
            os._exit(0)
    os.close(write)
    meanwhile()
    child = os.read(read, 64).decode()
    os.close(read)
    os.waitpid(pid, 0)
    return child


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork only")
def test_a_forked_child_does_not_repeat_its_parents_digits() -> None:
    draw = RandomHex(10)
    draw()  # the block now holds 399 more, which the child inherits
    child = _drawn_in_child(draw)
    parent = draw()
    assert len(child) == 20
    assert child != parent


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork only")
def test_a_child_forked_while_another_thread_refills_can_draw(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    draw = RandomHex(10, block_bytes=10)  # one chunk a block: the next draw refills
    draw()
    inside, release = threading.Event(), threading.Event()
    urandom = os.urandom

    def held(size: int) -> bytes:
        if threading.current_thread() is thread:  # only the parent's drawing thread waits
            inside.set()
            release.wait()
        return urandom(size)

    monkeypatch.setattr(random_hex.os, "urandom", held)

    def let_go() -> None:
        release.set()
        thread.join()

    thread = threading.Thread(target=draw)
    thread.start()
    inside.wait()
    child = _drawn_in_child(draw, meanwhile=let_go)  # a draw half done in the parent
    assert len(child) == 20


def test_importing_registers_nothing_first_use_registers_once() -> None:
    probe = (
        "import os\n"
        "calls = []\n"
        "register = os.register_at_fork\n"
        "os.register_at_fork = lambda **kw: (calls.append(kw), register(**kw))[1]\n"
        "from tailorbot.events.schema import new_event_id\n"
        "def ours():\n"
        "    return sum(c['after_in_child'].__module__ == 'tailorbot.events.random_hex'\n"
        "               for c in calls)\n"
        "at_import = ours()\n"
        "new_event_id(); new_event_id()\n"
        "print(at_import, ours())\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["0", "1"]


def test_an_instance_is_collected_after_use() -> None:
    # The fork hook holds it weakly: a short-lived instance does not live forever.
    draw = RandomHex(4)
    draw()
    ref = weakref.ref(draw)
    del draw
    gc.collect()
    assert ref() is None


@pytest.mark.parametrize(
    ("nbytes", "block_bytes", "message"),
    [(0, 10, "nbytes must be >= 1"), (10, 9, "block_bytes must be >= nbytes")],
)
def test_bad_sizes_are_refused(nbytes: int, block_bytes: int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        RandomHex(nbytes, block_bytes)


def test_event_ids_keep_their_layout() -> None:
    ids = [new_event_id() for _ in range(2000)]
    assert len(set(ids)) == 2000
    assert all(len(i) == 32 and int(i, 16) >= 0 for i in ids)
    assert [i[:12] for i in ids] == sorted(i[:12] for i in ids)  # milliseconds first
