"""`tailorbot rasa consume` against a real Kafka-protocol broker (the session's Tansu): Rasa's
event-broker records become tailorbot events, offsets are committed after the append, and a
second run of the same group reads nothing again."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic
from typer.testing import CliRunner, Result

from tailorbot.cli import app
from tailorbot.config import Settings
from tailorbot.events.codec import decode_event
from tailorbot.runtime import Runtime
from tests.integration.kafka_broker import TEST_CONSUMER_CONFIG
from tests.integrations.test_rasa import classic_tracker

pytestmark = pytest.mark.integration


def publish_like_rasa(bootstrap: str, topic: str, records: list[bytes], keys: list[str]) -> None:
    """What Rasa's Kafka event broker does with partition_by_sender: JSON, keyed by sender."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for future in admin.create_topics([NewTopic(topic, num_partitions=2)]).values():
        future.result(timeout=10)
    producer = Producer({"bootstrap.servers": bootstrap})
    for key, value in zip(keys, records, strict=True):
        producer.produce(topic, key=key.encode(), value=value)
    assert producer.flush(10) == 0


def rasa_consume(bootstrap: str, topic: str, data_dir: Path, *options: str) -> Result:
    """One ``tailorbot rasa consume`` run on ``topic`` with ``options``, as the test broker
    needs it (its consumer settings) and with a slot mapped to a profile attribute."""
    kafka = [f"-X{key}={value}" for key, value in TEST_CONSUMER_CONFIG.items()]
    return CliRunner().invoke(
        app,
        ["rasa", "consume", "--bootstrap", bootstrap, "--topic", topic, *options,
         "--data-dir", str(data_dir), *kafka],
        env={"TAILORBOT_RASA_SLOT_ATTRIBUTES": '["plan=attributes.plan"]'},
    )  # fmt: skip


def consume(bootstrap: str, topic: str, group: str, data_dir: Path) -> str:
    """One ``tailorbot rasa consume --until-end`` run: it ends once its partitions are read."""
    result = rasa_consume(bootstrap, topic, data_dir, "--group", group, "--until-end")
    assert result.exit_code == 0, result.output
    return result.stdout


def error_lines(result: Result) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("error: ")]


def test_rasa_broker_topic_into_the_log(kafka_bootstrap: str, tmp_path: Path) -> None:
    topic = f"rasa-{uuid.uuid4().hex[:10]}"
    group = f"tb-rasa-{uuid.uuid4().hex[:8]}"
    t0 = time.time() - 60
    events = classic_tracker("c-1", t0) + classic_tracker("c-2", t0)
    records = [json.dumps(e).encode() for e in events] + [b"not json"]
    publish_like_rasa(kafka_bootstrap, topic, records, [e["sender_id"] for e in events] + ["c-1"])

    out = consume(kafka_bootstrap, topic, group, tmp_path)
    assert "events ingested: 10, records skipped: 1, records committed: 19" in out

    runtime = Runtime(Settings.load(data_dir=tmp_path, run_worker_in_server=False))
    try:
        logged = [
            decode_event(r.value)
            for partition in range(runtime.log.num_partitions)
            for r in runtime.log.read_all(partition)
        ]
        assert sorted(e["type"] for e in logged if e["user_id"] == "c-1") == sorted(
            ["session_started", "message", "message", "handoff", "session_ended"]
        )
        profile = runtime.stores.profiles.get("c-2")
        assert profile["attributes"] == {"plan": "Unlimited 5G"}
    finally:
        runtime.stop()

    # the offsets were committed: the same group, given the partitions, reads nothing to
    # their end
    again = consume(kafka_bootstrap, topic, group, tmp_path)
    assert "events ingested: 0, records skipped: 0, records committed: 0" in again


def test_a_backfill_stopped_before_the_end_exits_non_zero(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """--until-end stopped by --max-idle-s (here before the group even gave it partitions)
    is not a backfill done: a job runner must see the failure."""
    topic = f"rasa-short-{uuid.uuid4().hex[:10]}"
    publish_like_rasa(kafka_bootstrap, topic, [], [])
    group = f"tb-rasa-{uuid.uuid4().hex[:8]}"
    result = rasa_consume(kafka_bootstrap, topic, tmp_path, "--group", group, "--until-end",
                          "--max-idle-s", "0")  # fmt: skip
    assert result.exit_code == 1, result.output
    assert error_lines(result) == [
        "error: --until-end: stopped before its partitions were read to their end"
    ]


def test_a_backfill_of_a_topic_the_broker_lacks_is_one_line(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """A misspelled topic would read as a backfill of nothing, done."""
    topic = f"rasa-missing-{uuid.uuid4().hex[:10]}"
    result = rasa_consume(kafka_bootstrap, topic, tmp_path, "--until-end", "--connect-timeout", "1")
    assert result.exit_code == 1, result.output
    assert error_lines(result) == [
        f"error: --topic: the broker has no topic {topic!r} (--until-end reads a topic that exists)"
    ]
