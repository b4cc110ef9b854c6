from __future__ import annotations

import pytest

from tailorbot.store.base import FeatureRecord
from tailorbot.stream.state_cache import StateCache

BOTH = frozenset({0, 1})


def record(user: str, partition: int, offset: int, events: int = 1) -> FeatureRecord:
    state = {"ts": [float(i) for i in range(events)]}
    return FeatureRecord(user, state, partition, offset, event_time=0.0, updated_at=0.0)


def filled(**bounds: int) -> StateCache:
    """u0 (partition 0, offset 4) and u1 (partition 1, offset 7), committed 5 and 8."""
    cache = StateCache(**bounds)
    cache.begin(BOTH, committed={}, first_offsets={0: 0, 1: 0})
    cache.keep([record("u0", 0, 4), record("u1", 1, 7)], {0: 5, 1: 8})
    return cache


def test_entries_are_served_while_the_member_alone_moves_its_partitions_on() -> None:
    cache = filled()
    cache.begin(BOTH, committed={0: 5, 1: 8}, first_offsets={0: 5})
    assert cache.get("u0", 0) is not None and cache.get("u1", 1) is not None
    assert cache.get("nobody", 0) is None


def test_a_lost_partition_is_dropped_and_a_regained_one_read_again() -> None:
    cache = filled()
    cache.begin(frozenset({1}), committed={0: 5, 1: 8}, first_offsets={1: 8})
    assert "u0" not in cache and "u1" in cache
    cache.begin(BOTH, committed={0: 5, 1: 8}, first_offsets={0: 5, 1: 8})
    assert cache.get("u0", 0) is None  # gained again: the store is read
    cache.keep([record("u0", 0, 9)], {0: 10})  # and what was written from it is kept
    cache.begin(BOTH, committed={0: 10, 1: 8}, first_offsets={0: 10})
    assert cache.get("u0", 0).offset == 9


@pytest.mark.parametrize(
    ("committed", "first_offsets"),
    [
        ({0: 9, 1: 8}, {0: 9}),  # someone else committed partition 0 meanwhile
        ({0: 3, 1: 8}, {0: 3}),  # our last commit of partition 0 did not land
        ({0: 5, 1: 8}, {0: 2}),  # partition 0 is re-read from elsewhere
    ],
)
def test_a_partition_moved_on_by_someone_else_is_dropped(committed, first_offsets) -> None:
    cache = filled()
    cache.begin(BOTH, committed=committed, first_offsets=first_offsets)
    assert "u0" not in cache and cache.get("u1", 1) is not None


def test_records_of_partitions_not_owned_are_not_kept() -> None:
    cache = StateCache()
    cache.begin(frozenset({1}), committed={}, first_offsets={0: 0, 1: 0})
    cache.keep([record("u0", 0, 4), record("u1", 1, 7)], {0: 5, 1: 8})
    assert "u0" not in cache and "u1" in cache


def test_a_record_of_another_partition_is_not_served() -> None:
    cache = filled()
    assert cache.get("u0", 1) is None and "u0" not in cache


def test_least_recently_written_entries_go_beyond_maxsize() -> None:
    cache = filled(maxsize=2)
    cache.begin(BOTH, committed={0: 5, 1: 8}, first_offsets={})
    cache.get("u0", 0)  # read: u0 is still the least recently written
    cache.keep([record("u2", 1, 8)], {1: 9})
    assert len(cache) == 2 and "u0" not in cache and "u1" in cache and "u2" in cache


def test_retained_events_are_bounded_too() -> None:
    cache = filled(max_events=10)
    cache.keep([record("u2", 1, 8, events=9)], {1: 9})  # 1 + 1 + 9 events: u0 goes
    assert "u0" not in cache and "u1" in cache and "u2" in cache
    cache.keep([record("u2", 1, 9, events=3), record("u3", 0, 5, events=7)], {0: 6, 1: 10})
    assert "u1" not in cache  # 1 + 3 + 7: u2's old 9 events no longer count
    assert "u2" in cache and "u3" in cache
    cache.keep([record("u4", 0, 6, events=11)], {0: 7})
    assert len(cache) == 0  # one state over the bound is not kept either


def test_discard_and_clear_forget() -> None:
    cache = filled()
    cache.discard(["u0", "nobody"])
    assert "u0" not in cache and "u1" in cache
    cache.clear()
    assert len(cache) == 0
    cache.begin(BOTH, committed={0: 5, 1: 8}, first_offsets={})
    cache.keep([record("u1", 1, 9)], {1: 10})
    assert "u1" in cache


def test_size_zero_turns_the_cache_off() -> None:
    cache = filled(maxsize=0)
    assert len(cache) == 0 and cache.get("u0", 0) is None


def test_negative_bounds_are_refused() -> None:
    with pytest.raises(ValueError, match="maxsize=-1"):
        StateCache(maxsize=-1)


def test_an_entry_is_dropped_max_idle_s_after_its_write_however_often_read() -> None:
    """Measured from the write, not the last read: a batch of duplicates reads a user and
    writes nothing, so the store's copy (a Redis record_ttl) is not renewed either."""
    now = [0.0]
    cache = StateCache(max_idle_s=60, clock=lambda: now[0])
    cache.begin(BOTH, committed={}, first_offsets={0: 0, 1: 0})
    cache.keep([record("u0", 0, 4), record("u1", 1, 7)], {0: 5, 1: 8})
    cache.begin(BOTH, committed={0: 5, 1: 8}, first_offsets={})
    now[0] = 30.0
    assert cache.expire() == 0
    assert cache.get("u1", 1) is not None  # read at 30: still kept since 0
    cache.keep([record("u0", 0, 5)], {0: 6})  # written again at 30
    now[0] = 60.0
    assert cache.expire() == 1  # u1, written at 0
    assert "u1" not in cache and "u0" in cache
    now[0] = 89.0
    assert cache.expire() == 0
    now[0] = 90.0
    assert cache.expire() == 1 and len(cache) == 0


def test_max_idle_s_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_idle_s"):
        StateCache(max_idle_s=0)
