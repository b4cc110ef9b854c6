"""Redis Streams event log: behaviour specific to Redis (the shared contract is in tests/contract).

Talks to the shared Redis on 127.0.0.1:6379 under a fresh key prefix, deleted afterwards.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
import redis

from tailorbot.log import LogError, open_log
from tailorbot.log.redis_consumer import fair_share
from tailorbot.log.redis_streams import RedisStreamsEventLog
from tests.helpers import REDIS_URL, closed_port, redis_namespace, wait_until

pytestmark = pytest.mark.integration


@pytest.fixture
def prefix() -> Iterator[str]:
    with redis_namespace() as prefix:
        yield prefix


def open_redis_log(prefix: str, partitions: int = 4, **options: str) -> RedisStreamsEventLog:
    query = "".join(f"&{k}={v}" for k, v in options.items())
    log = open_log(f"{REDIS_URL}?prefix={prefix}{query}", partitions=partitions)
    assert isinstance(log, RedisStreamsEventLog)
    return log


def test_entry_ids_encode_offsets_and_the_counter_is_the_end(prefix: str) -> None:
    log = open_redis_log(prefix)
    placed = log.append([("u1", b"a"), ("u1", b"b")])
    p = placed[0][0]
    raw = redis.Redis.from_url(REDIS_URL).xrange(f"{prefix}:log:{p}")
    assert [entry_id for entry_id, _ in raw] == [b"1-0", b"2-0"]
    assert raw[1][1] == {b"k": b"u1", b"v": b"b"}
    assert log.end_offsets()[p] == 2


def test_concurrent_appenders_get_dense_unique_offsets_in_their_order(prefix: str) -> None:
    writers, batches, size = 4, 25, 20

    def write(w: int) -> None:
        log = open_redis_log(prefix)  # one client each: really concurrent connections
        for b in range(batches):
            log.append([(f"user{w}", f"{w}:{b}:{i}".encode()) for i in range(size)])
        log.close()

    threads = [threading.Thread(target=write, args=(w,)) for w in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    log = open_redis_log(prefix)
    total = 0
    for p in range(log.num_partitions):
        records = log.read_all(p)
        total += len(records)
        assert [r.offset for r in records] == list(range(len(records)))
        assert log.end_offsets()[p] == len(records)
        for w in range(writers):
            mine = [r.value.decode() for r in records if r.key == f"user{w}"]
            expected = [f"{w}:{b}:{i}" for b in range(batches) for i in range(size)]
            assert mine in ([], expected)
    assert total == writers * batches * size


def test_another_partition_count_is_refused_at_open_and_at_append(prefix: str) -> None:
    log = open_redis_log(prefix, partitions=4)
    with pytest.raises(ValueError, match="has 4 partitions, opened with 8"):
        open_redis_log(prefix, partitions=8)
    # Opened while the key was gone (e.g. opened while Redis was down): the script refuses.
    redis.Redis.from_url(REDIS_URL).set(f"{prefix}:log:partitions", 2)
    with pytest.raises(LogError, match="has 2 partitions, opened with 4"):
        log.append([("u1", b"a")])


def test_a_dead_members_uncommitted_records_are_redelivered_to_the_survivor(prefix: str) -> None:
    # 3 s, as the log contract's: a stall of this busy process (the suite runs in two
    # workers) longer than a short session ended the survivor's too
    log = open_redis_log(prefix, session_timeout="3")
    log.append([(f"user{i}", f"v{i}".encode()) for i in range(40)])
    survivor = log.consumer("g", "a-survivor")
    dying = log.consumer("g", "b-dying")
    taken = dying.assignment()
    assert taken and taken.isdisjoint(survivor.assignment())
    # The dying member commits part of its work, reads the rest, then stops heartbeating.
    first = dying.poll(1000)
    partial = {p: 1 for p in taken}
    dying.commit(partial)
    assert {r.partition for r in first} == set(taken)

    wait_until(lambda: survivor.assignment() == frozenset(range(4)), "the session to expire", 60)
    again = survivor.poll(1000)
    expected = sorted((r.partition, r.offset) for r in first if r.offset >= 1)
    got = sorted((r.partition, r.offset) for r in again if r.partition in taken)
    assert got == expected  # nothing lost, nothing committed re-read
    # The stalled member cannot move offsets of partitions it lost.
    dying.commit({p: 99 for p in taken})
    assert {p: o for p, o in log.committed("g").items() if p in taken} == partial


def test_a_member_whose_session_lapsed_resumes_from_the_commit(prefix: str) -> None:
    log = open_redis_log(prefix, partitions=1, session_timeout="3")  # as above
    log.append([("u1", f"v{i}".encode()) for i in range(5)])
    stalled = log.consumer("g", "a")
    assert len(stalled.poll(10)) == 5  # read, never committed: then it stalls
    other = log.consumer("g", "b")
    wait_until(lambda: other.assignment() == frozenset({0}), "the stalled session to lapse", 60)
    other.commit({0: 2})
    other.close()
    # Back from its stall, the member rejoins and reads from the commit, not from where it was.
    assert [r.offset for r in stalled.poll(10)] == [2, 3, 4]


def test_erasure_deletes_the_users_entries_and_consumers_step_over_the_gap(prefix: str) -> None:
    log = open_redis_log(prefix, partitions=1)
    log.append([("gone", b"1"), ("kept", b"2"), ("gone", b"3"), ("gone", b"4")])
    consumer = log.consumer("g")
    assert log.erase_user("gone") == 4
    assert [(r.offset, r.key) for r in log.read_all(0)] == [(1, "kept")]
    client = redis.Redis.from_url(REDIS_URL)
    assert not client.exists(f"{prefix}:log:user:gone")
    assert [r.offset for r in consumer.poll(10)] == [1]
    assert consumer.poll(10) == []  # the erased tail is skipped, not read again and again
    log.append([("kept", b"5")])
    assert [r.offset for r in consumer.poll(10)] == [4]


def test_poll_with_a_timeout_wakes_up_for_a_new_record(prefix: str) -> None:
    log = open_redis_log(prefix)
    consumer = log.consumer("g")
    assert consumer.poll(10) == []
    timer = threading.Timer(0.2, lambda: log.append([("u1", b"late")]))
    timer.start()
    records = consumer.poll(10, timeout_s=10.0)
    timer.join()
    assert [r.value for r in records] == [b"late"]


def test_a_big_backlog_does_not_starve_other_partitions(prefix: str) -> None:
    log = open_redis_log(prefix, partitions=2)
    busy = next(u for u in (f"u{i}" for i in range(100)) if log.partition_for(u) == 0)
    quiet = next(u for u in (f"u{i}" for i in range(100)) if log.partition_for(u) == 1)
    log.append([(busy, b"x")] * 500 + [(quiet, b"y")])
    records = log.consumer("g").poll(100)
    assert len(records) == 100 and {r.key for r in records} == {busy, quiet}


def test_fair_share_serves_small_backlogs_fully_and_splits_the_rest() -> None:
    assert fair_share({0: 3, 1: 50, 2: 50}, 23) == {0: 3, 1: 10, 2: 10}
    assert fair_share({0: 5, 1: 5, 2: 5}, 2) == {0: 1, 1: 1}
    assert fair_share({0: 0}, 10) == {}


def test_every_operation_raises_log_error_when_redis_is_unreachable() -> None:
    log = open_log(f"redis://127.0.0.1:{closed_port()}/0?connect_timeout=0.5", partitions=2)
    calls = [
        log.ping,
        lambda: log.append([("u1", b"a")]),
        lambda: log.read(0, 0, 10),
        log.end_offsets,
        lambda: log.committed("g"),
        lambda: log.consumer("g"),
        lambda: log.erase_user("u1"),
    ]
    for call in calls:
        with pytest.raises(LogError, match="redis"):
            call()


def test_bad_url_options_are_named() -> None:
    with pytest.raises(ValueError, match="unknown Redis URL option.*'bogus'"):
        open_log(f"{REDIS_URL}?bogus=1", partitions=2)
    with pytest.raises(ValueError, match="session_timeout='-1': must be a positive number"):
        open_log(f"{REDIS_URL}?session_timeout=-1", partitions=2)
