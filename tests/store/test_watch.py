"""CounterWatch: when a poller of shared counters may skip its read."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest

from tailorbot.store import Stores, open_stores
from tailorbot.store import watch as watch_module
from tailorbot.store.watch import CounterWatch
from tests.helpers import CountedReads


@pytest.fixture
def stores(tmp_path: Path) -> Iterator[Stores]:
    opened = open_stores(f"sqlite:///{tmp_path / 'store.db'}")
    yield opened
    opened.close()


def test_a_read_is_skipped_only_after_it_was_confirmed(stores: Stores) -> None:
    watch = CounterWatch(stores.counters, ("a", "b"))
    stamps = watch.changed()
    assert stamps is not None
    assert watch.changed() == stamps, "a read not confirmed (it failed) is tried again"
    watch.read(stamps)
    assert watch.changed() is None
    stores.counters.increment("b", {"x": 1.0})
    moved = watch.changed()
    assert moved is not None and moved != stamps
    stores.counters.increment("c", {"x": 1.0})  # not watched
    watch.read(moved)
    assert watch.changed() is None


def test_a_write_between_the_stamps_and_the_read_is_read_again(stores: Stores) -> None:
    watch = CounterWatch(stores.counters, ("a",))
    stamps = watch.changed()
    assert stamps is not None
    stores.counters.increment("a", {"x": 1.0})  # lands while the poller reads
    watch.read(stamps)
    assert watch.changed() is not None


def test_a_store_without_stamps_is_always_read(stores: Stores) -> None:
    watch = CounterWatch(CountedReads(stores.counters, stamped=False), ("a",))
    for _ in range(3):
        stamps = watch.changed()
        assert stamps == ()
        watch.read(stamps)


def test_a_full_read_comes_every_full_read_s_whatever_the_stamps(
    stores: Stores, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A process of an older release adds to the counters without raising their stamps (a
    rolling upgrade): its writes are read within ``full_read_s``."""
    now = [1000.0]
    monkeypatch.setattr(watch_module, "time", SimpleNamespace(monotonic=lambda: now[0]))
    watch = CounterWatch(stores.counters, ("a",), full_read_s=60.0)
    stamps = watch.changed()
    assert stamps is not None
    watch.read(stamps)
    with stores.counters.file.write() as conn:  # as the older release writes
        conn.execute("INSERT INTO counters VALUES ('a', 'x', 1.0)")
    now[0] += 59.0
    assert watch.changed() is None
    now[0] += 1.0
    assert watch.changed() == stamps
