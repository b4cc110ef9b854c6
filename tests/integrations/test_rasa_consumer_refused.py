"""`tailorbot rasa consume`: a batch the door refuses whole is skipped and committed, not
re-read forever (one bad record never blocks a partition)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tailorbot.config import Settings
from tailorbot.errors import Overloaded, Unavailable
from tailorbot.integrations.profiles import ProfileUpdater
from tailorbot.integrations.rasa import RasaEventMapper
from tailorbot.integrations.rasa_consumer import RasaBrokerConsumer
from tailorbot.integrations.rasa_sink import ServiceSink
from tailorbot.runtime import Runtime

TOPIC = "rasa_core_events"


class Record:
    """A Kafka message as confluent_kafka hands it over (what the consumer reads of it)."""

    def __init__(self, value: dict[str, Any], offset: int) -> None:
        self._value = json.dumps(value).encode()
        self._offset = offset

    def value(self) -> bytes:
        return self._value

    def topic(self) -> str:
        return TOPIC

    def partition(self) -> int:
        return 0

    def offset(self) -> int:
        return self._offset

    def error(self) -> None:
        return None


class Kafka:
    """The consumer's broker connection: records what was committed."""

    def __init__(self) -> None:
        self.committed: list[tuple[int, int]] = []

    def commit(self, offsets: list[Any], asynchronous: bool) -> None:
        self.committed += [(tp.partition, tp.offset) for tp in offsets]


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[Runtime]:
    built = Runtime(Settings.load(data_dir=tmp_path, run_worker_in_server=False, partitions=2))
    yield built
    built.stop()


def consumer_of(runtime: Runtime) -> tuple[RasaBrokerConsumer, Kafka]:
    sink = ServiceSink(runtime.ingestion, ProfileUpdater(runtime.stores.profiles, runtime.users))
    mapper = RasaEventMapper(slot_attributes={"plan": "attributes.plan"})
    consumer = RasaBrokerConsumer("unused:9092", TOPIC, sink, mapper)
    kafka = Kafka()
    consumer._consumer = kafka
    return consumer, kafka


def user_event(sender: str, timestamp: float, text: str = "where is my card") -> dict[str, Any]:
    return {"sender_id": sender, "event": "user", "timestamp": timestamp, "text": text}


def logged(runtime: Runtime) -> int:
    log = runtime.log
    return sum(len(list(log.read_all(p))) for p in range(log.num_partitions))


@pytest.mark.parametrize(
    "events",
    [
        pytest.param([user_event("c-1", time.time() - 40 * 86400)] * 3, id="40-days-old"),
        pytest.param([user_event("c-1", time.time() - 60, "x" * 6000)], id="text-too-long"),
    ],
)
def test_a_batch_refused_whole_is_skipped_and_committed(
    runtime: Runtime, events: list[dict[str, Any]]
) -> None:
    consumer, kafka = consumer_of(runtime)
    records = [Record(event, offset) for offset, event in enumerate(events)]
    assert consumer._process(records) is True  # not retried, not raised
    assert kafka.committed == [(0, len(events))]
    counts = (consumer.ingested, consumer.skipped, consumer.committed)
    assert counts == (0, len(events), len(events))
    assert logged(runtime) == 0


def test_the_profile_of_a_refused_batch_is_still_written(runtime: Runtime) -> None:
    consumer, kafka = consumer_of(runtime)
    old = time.time() - 40 * 86400
    slot = {"sender_id": "c-2", "event": "slot", "timestamp": time.time() - 5, "name": "plan",
            "value": "5G"}  # fmt: skip
    assert consumer._process([Record(user_event("c-2", old), 7), Record(slot, 8)]) is True
    assert kafka.committed == [(0, 9)]
    assert runtime.stores.profiles.get("c-2")["attributes"] == {"plan": "5G"}


def test_a_batch_over_the_doors_limit_goes_in_several_requests(tmp_path: Path) -> None:
    """A deployment's max_batch_events below the consumer's batch (500 records) stopped
    `rasa consume` for good: the door refused the request whole for its size."""
    settings = Settings.load(data_dir=tmp_path, run_worker_in_server=False, max_batch_events=2)
    built = Runtime(settings)
    try:
        profiles = ProfileUpdater(built.stores.profiles, built.users)
        sink = ServiceSink(built.ingestion, profiles, settings.max_batch_events)
        consumer = RasaBrokerConsumer("unused:9092", TOPIC, sink, RasaEventMapper())
        kafka = Kafka()
        consumer._consumer = kafka
        now = time.time() - 60
        records = [Record(user_event(f"c-{i}", now + i, f"message {i}"), i) for i in range(5)]
        assert consumer._process(records) is True
        assert kafka.committed == [(0, 5)]
        assert (consumer.ingested, consumer.skipped, consumer.committed) == (5, 0, 5)
        assert logged(built) == 5
    finally:
        built.stop()


def test_a_batch_whose_commit_fails_is_to_be_read_again(runtime: Runtime) -> None:
    """A commit refused (the partition lost in a rebalance, the coordinator moved) is not a
    batch done: ``--until-end`` must not stop on it."""
    from confluent_kafka import KafkaError, KafkaException

    class Refusing(Kafka):
        def commit(self, offsets: list[Any], asynchronous: bool) -> None:
            raise KafkaException(KafkaError(KafkaError.ILLEGAL_GENERATION))

    consumer, kafka = consumer_of(runtime)
    consumer._consumer = Refusing()
    records = [Record(user_event("c-3", time.time() - 60), 0), Record({"event": "?"}, 1)]
    assert consumer._process(records) is False
    assert (consumer.ingested, consumer.skipped, consumer.committed) == (0, 0, 0)
    # read again and committed: its event and its skipped record count once
    consumer._consumer = kafka
    assert consumer._process(records) is True
    assert (consumer.ingested, consumer.skipped, consumer.committed) == (1, 1, 2)


def test_a_commit_that_cannot_succeed_stops_the_consumer(runtime: Runtime) -> None:
    """Not retried forever: the batch would be read, appended and refused again and again."""
    from confluent_kafka import KafkaError, KafkaException

    class Unauthorized(Kafka):
        def commit(self, offsets: list[Any], asynchronous: bool) -> None:
            raise KafkaException(KafkaError(KafkaError.GROUP_AUTHORIZATION_FAILED))

    consumer, _ = consumer_of(runtime)
    consumer._consumer = Unauthorized()
    with pytest.raises(Unavailable, match="commit failed"):
        consumer._process([Record(user_event("c-4", time.time() - 60), 0)])


def test_a_sink_needs_a_positive_request_size(runtime: Runtime) -> None:
    profiles = ProfileUpdater(runtime.stores.profiles, runtime.users)
    with pytest.raises(ValueError, match="max_events"):
        ServiceSink(runtime.ingestion, profiles, 0)


class FlakyDoor:
    """The ingestion service, answering 429 to the second request of the first attempt."""

    def __init__(self, door: Any) -> None:
        self.door = door
        self.calls = 0

    def ingest(self, events: list[dict[str, Any]], **options: Any) -> Any:
        self.calls += 1
        if self.calls == 2:
            raise Overloaded("the log is behind", retry_after=1)
        return self.door.ingest(events, **options)


def test_a_retried_batch_does_not_send_what_its_first_requests_took(tmp_path: Path) -> None:
    settings = Settings.load(data_dir=tmp_path, run_worker_in_server=False, max_batch_events=2)
    built = Runtime(settings)
    try:
        profiles = ProfileUpdater(built.stores.profiles, built.users)
        sink = ServiceSink(FlakyDoor(built.ingestion), profiles, settings.max_batch_events)
        consumer = RasaBrokerConsumer("unused:9092", TOPIC, sink, RasaEventMapper())
        consumer._consumer = Kafka()
        now, old = time.time() - 60, time.time() - 40 * 86400
        records = [  # the second event is refused for its age, in the first request
            Record(user_event(f"c-{i}", old if i == 1 else now + i, f"message {i}"), i)
            for i in range(5)
        ]
        assert consumer._process(records) is False  # the 429: the batch is retried
        assert consumer._process(records) is True
        assert logged(built) == 4  # the first request's event was not appended twice
        assert (consumer.ingested, consumer.skipped, consumer.committed) == (4, 1, 5)
    finally:
        built.stop()
