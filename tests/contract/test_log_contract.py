"""The event-log contract: every backend in LOG_FACTORIES must pass all of it.

Fixtures open logs with 4 partitions. Waits (for a rebalance, a session timeout) poll with
a generous limit that only stops a hung test; nothing here asserts on timing.
"""

from __future__ import annotations

import time
from collections import defaultdict

from tailorbot.log.base import Consumer, EventLog, LogRecord, partition_for
from tests.contract.conftest import LogOpener
from tests.helpers import wait_until

ALL = frozenset(range(4))


def user_per_partition(partitions: int = 4) -> dict[int, str]:
    """A user id hashing to each partition."""
    found: dict[int, str] = {}
    i = 0
    while len(found) < partitions:
        found.setdefault(partition_for(f"user-{i}", partitions), f"user-{i}")
        i += 1
    return found


def drain(consumer: Consumer, count: int, limit_s: float = 30.0) -> list[LogRecord]:
    """Poll until ``count`` records came (fails when the limit passes first)."""
    got: list[LogRecord] = []
    stop = time.monotonic() + limit_s
    while len(got) < count and time.monotonic() < stop:
        got.extend(consumer.poll(count - len(got), timeout_s=0.2))
    assert len(got) == count, f"polled {len(got)} of {count} records"
    return got


def next_offsets(records: list[LogRecord]) -> dict[int, int]:
    ends: dict[int, int] = {}
    for r in records:
        ends[r.partition] = max(ends.get(r.partition, 0), r.offset + 1)
    return ends


def split_between(first: Consumer, second: Consumer) -> bool:
    a, b = first.assignment(), second.assignment()
    return bool(a) and bool(b) and not a & b and a | b == ALL


def wait_for_split(first: Consumer, second: Consumer) -> None:
    # A group settles after the broker's join window (Kafka: half the session timeout) and
    # settles again whenever a starved member misses its poll interval: a generous bound.
    wait_until(lambda: split_between(first, second), "the two members to split the partitions", 60)


def test_append_places_each_item_by_its_key_with_offsets_from_zero(event_log: EventLog) -> None:
    items = [("alice", b"a1"), ("bob", b"b1"), ("alice", b"a2"), ("carol", b"c1"), ("bob", b"b2")]
    placed = event_log.append(items)
    assert event_log.num_partitions == 4
    assert [p for p, _ in placed] == [partition_for(key, 4) for key, _ in items]
    by_partition: dict[int, list[int]] = defaultdict(list)
    for p, offset in placed:
        by_partition[p].append(offset)
    for offsets in by_partition.values():
        assert offsets == list(range(len(offsets)))
    assert event_log.append([]) == []


def test_one_users_records_stay_in_one_partition_in_order(event_log: EventLog) -> None:
    for batch in range(3):
        event_log.append(
            [("alice", f"{batch}-{i}".encode()) for i in range(5)] + [("bob", b"other")]
        )
    p = event_log.partition_for("alice")
    mine = [r for r in event_log.read_all(p) if r.key == "alice"]
    assert [r.value for r in mine] == [f"{b}-{i}".encode() for b in range(3) for i in range(5)]
    assert {r.partition for r in mine} == {p}


def test_offsets_only_grow_and_end_offsets_follow_them(event_log: EventLog) -> None:
    assert event_log.end_offsets() == dict.fromkeys(ALL, 0)
    placed: dict[int, list[int]] = defaultdict(list)
    for round_ in range(4):
        for p, offset in event_log.append([(f"user-{u}", b"%d" % round_) for u in range(15)]):
            placed[p].append(offset)
    ends = event_log.end_offsets()
    for p in ALL:
        offsets = placed[p]
        assert offsets == sorted(set(offsets))
        assert ends[p] == (offsets[-1] + 1 if offsets else 0)
        assert [r.offset for r in event_log.read_all(p)] == offsets


def test_read_starts_at_an_offset_and_returns_at_most_max_records(event_log: EventLog) -> None:
    event_log.append([("alice", b"%d" % i) for i in range(10)])
    p = event_log.partition_for("alice")
    got = event_log.read(p, 4, 3)
    assert [(r.partition, r.offset, r.key, r.value) for r in got] == [
        (p, 4, "alice", b"4"),
        (p, 5, "alice", b"5"),
        (p, 6, "alice", b"6"),
    ]
    assert [r.value for r in event_log.read(p, 8, 100)] == [b"8", b"9"]
    assert event_log.read(p, 10, 5) == []


def test_a_group_resumes_from_its_commits_after_reopening(open_event_log: LogOpener) -> None:
    log = open_event_log()
    log.append([(f"user-{i}", b"first") for i in range(12)])
    consumer = log.consumer("features")
    got = drain(consumer, 12)
    assert [r.value for r in got] == [b"first"] * 12
    for p in ALL:  # each partition in offset order
        offsets = [r.offset for r in got if r.partition == p]
        assert offsets == sorted(offsets)
    done = next_offsets(got)
    consumer.commit(done)
    expected = {p: done.get(p, 0) for p in ALL}
    assert log.committed("features") == expected
    consumer.close()
    log.close()

    log = open_event_log()
    assert log.committed("features") == expected
    assert log.committed("another-group") == dict.fromkeys(ALL, 0)
    log.append([(f"user-{i}", b"second") for i in range(12)])
    consumer = log.consumer("features")
    assert [r.value for r in drain(consumer, 12)] == [b"second"] * 12
    assert consumer.poll(100, timeout_s=0.2) == []


def test_uncommitted_records_are_delivered_again_to_the_next_member(event_log: EventLog) -> None:
    users = user_per_partition()
    event_log.append([(users[p], b"%d" % i) for p in ALL for i in range(3)])
    consumer = event_log.consumer("g")
    got = drain(consumer, 12)
    consumer.commit({r.partition: r.offset + 1 for r in got if r.offset == 0})  # 1 per partition
    consumer.close()
    again = drain(event_log.consumer("g"), 8)
    assert sorted((r.partition, r.offset) for r in again) == [(p, o) for p in ALL for o in (1, 2)]


def test_two_members_split_the_partitions_and_the_survivor_takes_over(
    event_log: EventLog,
) -> None:
    users = user_per_partition()
    event_log.append([(users[p], b"%d" % i) for p in ALL for i in range(3)])
    first, second = event_log.consumer("g", "member-a"), event_log.consumer("g", "member-b")
    wait_for_split(first, second)
    theirs = second.assignment()
    got = drain(second, 3 * len(theirs))
    assert {r.partition for r in got} == theirs
    second.commit(dict.fromkeys(theirs, 1))  # only the first record of each was applied
    second.close()

    wait_until(lambda: first.assignment() == ALL, "the survivor to own every partition")
    taken = drain(first, 12 - len(theirs))
    expected = {(p, o) for p in ALL for o in range(3)} - {(p, 0) for p in theirs}
    assert {(r.partition, r.offset) for r in taken} == expected
    assert first.poll(10, timeout_s=0.2) == []


def test_a_silent_member_loses_its_partitions_after_the_session_timeout(
    open_event_log: LogOpener,
) -> None:
    # 3 s, not less: on a busy 2-core machine a shorter poll interval let the live member
    # miss its own and the group never settled (CI failed on 1 s).
    log = open_event_log(session_timeout=3.0)
    first, second = log.consumer("g", "member-a"), log.consumer("g", "member-b")
    wait_for_split(first, second)
    # ``second`` goes silent: no poll, no heartbeat, no close.
    wait_until(lambda: first.assignment() == ALL, "the session of the silent member to end", 60)


def test_a_commit_for_a_partition_of_another_member_is_ignored(event_log: EventLog) -> None:
    users = user_per_partition()
    event_log.append([(users[p], b"%d" % i) for p in ALL for i in range(6)])
    first, second = event_log.consumer("g", "member-a"), event_log.consumer("g", "member-b")
    wait_for_split(first, second)
    mine, theirs = min(first.assignment()), min(second.assignment())
    first.commit({mine: 3, theirs: 5})
    committed = event_log.committed("g")
    assert committed[mine] == 3
    assert committed[theirs] == 0


def test_erase_user_removes_the_users_records_and_returns_the_watermark(
    event_log: EventLog,
) -> None:
    event_log.append([("victim", b"v1"), ("bystander", b"b1"), ("victim", b"v2")])
    event_log.append([("victim", b"v3")])
    p = event_log.partition_for("victim")
    end = event_log.end_offsets()[p]
    watermark = event_log.erase_user("victim")
    assert watermark == end
    remaining = [r for q in ALL for r in event_log.read_all(q)]
    assert [r.key for r in remaining] == ["bystander"]
    # Offsets are not reused: the user's next record lands at or past the watermark.
    ((q, offset),) = event_log.append([("victim", b"v4")])
    assert q == p and offset >= watermark
    assert [r.value for r in event_log.read_all(p) if r.key == "victim"] == [b"v4"]


def test_lag_counts_what_the_group_has_not_committed(event_log: EventLog) -> None:
    users = user_per_partition()
    event_log.append([(users[p], b"x") for p in ALL for _ in range(3)])
    assert event_log.lag("g") == dict.fromkeys(ALL, 3)
    assert event_log.total_lag("g") == 3 * len(ALL) and event_log.total_lag("other") == 12
    consumer = event_log.consumer("g")
    got = drain(consumer, 12)
    first_partition = min(ALL)
    consumer.commit({p: off for p, off in next_offsets(got).items() if p == first_partition})
    assert event_log.lag("g") == {p: 0 if p == first_partition else 3 for p in ALL}
    assert event_log.total_lag("g") == 3 * (len(ALL) - 1)


def test_ping_answers_when_the_log_is_up(event_log: EventLog) -> None:
    event_log.ping()


def test_trim_deletes_below_an_offset_and_offsets_do_not_move(event_log: EventLog) -> None:
    """Retention's primitive; a log with a retention of its own (Kafka) says so instead."""
    placed = event_log.append([("u1", f"r{i}".encode()) for i in range(6)])
    partition = placed[0][0]
    try:
        removed = event_log.trim(partition, 4)
    except NotImplementedError:
        return
    assert removed == 4
    assert [r.offset for r in event_log.read_all(partition)] == [4, 5]
    assert event_log.append([("u1", b"r6")])[0] == (partition, 6)
    assert event_log.trim(partition, 4) == 0  # idempotent
