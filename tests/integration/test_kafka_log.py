"""Kafka event log against a real Kafka-protocol broker (Tansu, started by the session fixture).

Behaviour specific to Kafka; the shared log contract runs in tests/contract. Each test gets a
fresh topic. Consumer groups on Tansu form after about half the session timeout (6 s here),
so the group tests take a few seconds each; no assertion depends on timing.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import pytest

from tailorbot.log import Consumer, LogError, LogRecord, open_log, partition_for
from tailorbot.log.kafka import KafkaEventLog, parse_kafka_url
from tests.helpers import closed_port, wait_until
from tests.integration.kafka_broker import TEST_CONSUMER_CONFIG

pytestmark = pytest.mark.integration

OpenLog = Callable[..., KafkaEventLog]


@pytest.fixture
def open_kafka_log(kafka_bootstrap: str) -> Iterator[OpenLog]:
    """Open logs on one fresh topic (every call of a test shares it); closed afterwards."""
    topic = f"test-{uuid.uuid4().hex[:10]}"
    opened: list[KafkaEventLog] = []

    def open_(partitions: int = 4) -> KafkaEventLog:
        log = KafkaEventLog(kafka_bootstrap, topic, partitions, config=TEST_CONSUMER_CONFIG)
        opened.append(log)
        return log

    yield open_
    for log in opened:
        log.close()


def poll_until(consumer: Consumer, count: int, what: str) -> list[LogRecord]:
    got: list[LogRecord] = []

    def enough() -> bool:
        got.extend(consumer.poll(100, timeout_s=0.2))
        return len(got) >= count

    wait_until(enough, what, limit_s=30)
    return got


def test_append_returns_delivered_positions_and_read_replays_them(open_kafka_log: OpenLog) -> None:
    log = open_kafka_log()
    items = [(f"user{i % 7}", f"v{i}".encode()) for i in range(60)]
    positions = log.append(items)
    expected: dict[int, list[tuple[int, str, bytes]]] = {p: [] for p in range(4)}
    for (key, value), (partition, offset) in zip(items, positions, strict=True):
        assert partition == partition_for(key, 4)
        expected[partition].append((offset, key, value))
    for partition, rows in expected.items():
        # Dense offsets from 0 per partition, in append order.
        assert [offset for offset, _, _ in rows] == list(range(len(rows)))
        replayed = log.read_all(partition, batch=7)
        assert [(r.offset, r.key, r.value) for r in replayed] == rows
    # One batch holds several records per partition: Tansu's ListOffsets alone says less.
    assert log.end_offsets() == {p: len(rows) for p, rows in expected.items()}
    assert log.read(0, log.end_offsets()[0] + 5, 10) == []


def test_read_starts_inside_a_batch(open_kafka_log: OpenLog) -> None:
    log = open_kafka_log(partitions=1)
    log.append([("u", f"{i}".encode()) for i in range(10)])  # one produce batch
    assert [r.value for r in log.read(0, 4, 3)] == [b"4", b"5", b"6"]


def test_an_existing_topic_with_another_partition_count_is_refused(open_kafka_log: OpenLog) -> None:
    log = open_kafka_log(partitions=4)
    with pytest.raises(LogError, match="has 4 partitions but 3 are configured"):
        open_kafka_log(partitions=3)
    log.ping()


def test_consumer_resumes_from_the_commit_made_after_apply(open_kafka_log: OpenLog) -> None:
    log = open_kafka_log()
    positions = log.append([(f"u{i}", f"{i}".encode()) for i in range(40)])
    per_partition = {p: sum(1 for q, _ in positions if q == p) for p in range(4)}
    first = log.consumer("workers")
    records = poll_until(first, 40, "the first member to read everything")
    # "Apply" only the first two records of each partition, commit, and leave.
    applied = {p: min(2, n) for p, n in per_partition.items()}
    first.commit(applied)
    first.close()
    assert log.committed("workers") == applied
    assert log.lag("workers") == {p: per_partition[p] - applied[p] for p in range(4)}

    second = log.consumer("workers")
    resumed = poll_until(second, 40 - sum(applied.values()), "the second member to resume")
    second.close()
    for p in range(4):
        offsets = [r.offset for r in resumed if r.partition == p]
        assert offsets == list(range(applied[p], per_partition[p]))
    assert sorted((r.partition, r.offset) for r in records) == sorted(positions)


def test_two_members_share_the_partitions_and_one_takes_over(open_kafka_log: OpenLog) -> None:
    log = open_kafka_log()
    log.append([(f"u{i}", b"x") for i in range(40)])
    a, b = log.consumer("pair", "member-a"), log.consumer("pair", "member-b")

    def split() -> bool:
        mine, theirs = a.assignment(), b.assignment()
        return bool(mine) and bool(theirs) and mine | theirs == set(range(4)) and not mine & theirs

    wait_until(split, "both members to own partitions", limit_s=30)
    owned_by_b = b.assignment()
    from_b = poll_until(b, sum(log.end_offsets()[p] for p in owned_by_b), "member b to read")
    assert {r.partition for r in from_b} <= owned_by_b
    b.commit({r.partition: r.offset + 1 for r in from_b})
    assert {r.partition for r in a.poll(100, timeout_s=0.5)} <= set(range(4)) - owned_by_b

    b.close()
    wait_until(lambda: a.assignment() == set(range(4)), "member a to take over", limit_s=30)
    records = poll_until(a, 40 - len(from_b), "member a to read the rest")
    # b's partitions were committed to their end: a reads none of them again.
    assert {r.partition for r in records} == set(range(4)) - owned_by_b
    a.close()
    with pytest.raises(LogError, match="closed"):
        a.poll(1)


def test_erasure_masks_the_user_for_replay_and_consumers(open_kafka_log: OpenLog) -> None:
    log = open_kafka_log(partitions=2)
    victim = "erase-me"
    p = partition_for(victim, 2)
    neighbour = next(f"n{i}" for i in range(100) if partition_for(f"n{i}", 2) == p)
    log.append([(victim, b"secret-1"), (neighbour, b"kept"), (victim, b"secret-2")])

    watermark = log.erase_user(victim)
    assert watermark == 3 == log.end_offsets()[p]
    later = log.append([(victim, b"after-erasure")])
    assert later == [(p, 3)]

    expected = [(1, neighbour, b"kept"), (3, victim, b"after-erasure")]
    assert [(r.offset, r.key, r.value) for r in log.read_all(p)] == expected
    # Another process sees the markers through the compacted erasures topic.
    other = open_kafka_log(partitions=2)
    assert other.erasures.watermark(victim) is None  # not read yet ...
    assert [(r.offset, r.key, r.value) for r in other.read_all(p)] == expected
    assert other.erasures.watermark(victim) == watermark  # ... read() caught up first
    consumer = other.consumer("after-erasure")
    seen = poll_until(consumer, 2, "the consumer to read the surviving records")
    consumer.close()
    assert [(r.offset, r.key, r.value) for r in seen] == expected
    assert [(r.partition, r.key, r.value) for r in log.read_all(1 - p)] == []


def test_url_options_and_librdkafka_properties() -> None:
    hosts, options, config = parse_kafka_url(
        "kafka://svc:p%40ss@b1:9093,b2:9093?topic=ev&timeout_s=2.5&exact_end_offsets=false"
        "&group_prefix=stg."
        "&security.protocol=SASL_SSL&sasl.mechanism=SCRAM-SHA-512&ssl.ca.location=/ca.pem"
    )
    assert hosts == "b1:9093,b2:9093"
    assert options == {
        "topic": "ev",
        "timeout_s": 2.5,
        "exact_end_offsets": False,
        "group_prefix": "stg.",
    }
    assert config == {
        "sasl.username": "svc",
        "sasl.password": "p@ss",
        "security.protocol": "SASL_SSL",
        "sasl.mechanism": "SCRAM-SHA-512",
        "ssl.ca.location": "/ca.pem",
    }
    with pytest.raises(ValueError, match="unknown kafka URL option 'topc'"):
        parse_kafka_url("kafka://b1:9092?topc=x")
    with pytest.raises(ValueError, match="replication_factor"):
        parse_kafka_url("kafka://b1:9092?replication_factor=three")
    with pytest.raises(ValueError, match="names no broker"):
        parse_kafka_url("kafka://?topic=x")


def test_open_log_by_url_and_invalid_client_settings(kafka_bootstrap: str) -> None:
    topic = f"test-{uuid.uuid4().hex[:10]}"
    log = open_log(f"kafka://{kafka_bootstrap}?topic={topic}", partitions=2)
    assert isinstance(log, KafkaEventLog)
    assert (log.topic, log.num_partitions) == (topic, 2)
    log.close()
    with pytest.raises(ValueError, match="invalid kafka client setting"):
        open_log(f"kafka://{kafka_bootstrap}?topic={topic}&no.such.setting=1", partitions=2)


def test_an_unreachable_broker_raises_log_error(capfd: pytest.CaptureFixture[str]) -> None:
    # one error naming the cause, not librdkafka's connection failure every ~50 ms on stderr
    with pytest.raises(LogError, match="unreachable: .*Connection refused"):
        KafkaEventLog(f"127.0.0.1:{closed_port()}", "t", 2, timeout_s=1.0)
    assert "rdkafka" not in capfd.readouterr().err
