"""Read Rasa's event broker topic (Kafka protocol) into tailorbot, as a consumer group.

Rasa's Kafka event broker writes one JSON event per record to a topic (default
``rasa_core_events``). :class:`RasaBrokerConsumer` joins a consumer group on it, maps each
batch with :class:`~tailorbot.integrations.rasa.RasaEventMapper`, hands the events and the
slot-derived profile fields to a :class:`~tailorbot.integrations.rasa_sink.RasaSink` (the
ingestion and user services), and commits the batch's offsets only *after* the sink has
them: a crash re-reads the batch, and the derived event ids make the re-read harmless. A
record that is not JSON or not a Rasa event is logged and skipped (counted in
``skipped``), and so is an event the ingestion door refuses (also when it refuses every
event of a batch), so one bad record never blocks a partition; a sink that is unavailable
(backend down, 429/503) stops the batch, which is retried from the last commit after a
growing pause.

Run it with ``tailorbot rasa consume --bootstrap HOST:PORT --topic rasa_core_events``.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from tailorbot.errors import InvalidInput, Overloaded, Unavailable
from tailorbot.integrations.rasa import RasaBatch, RasaEventMapper
from tailorbot.integrations.rasa_sink import RasaSink

if TYPE_CHECKING:
    from confluent_kafka import Message

logger = logging.getLogger(__name__)

MAX_BACKOFF_S = 5.0
CONNECT_TIMEOUT_S = 10.0  # how long the start waits for the broker's metadata


class KafkaConfigError(ValueError):
    """librdkafka refused the consumer's settings (an unknown property, a bad value)."""


class UnknownTopic(ValueError):
    """``until_end`` was asked of a topic the broker does not have or will not let this
    consumer read (a misspelled name would otherwise read as a backfill of nothing, done)."""


# Commit errors that pass (a rebalance, the coordinator moving, the broker out of reach for
# a while): the batch is read again while its partitions are ours. Any other error that
# librdkafka does not call retriable (not authorized, the topic deleted) stops the run.
TRANSIENT_COMMIT_ERRORS = frozenset(
    ("ILLEGAL_GENERATION", "UNKNOWN_MEMBER_ID", "REBALANCE_IN_PROGRESS", "NOT_COORDINATOR",
     "COORDINATOR_NOT_AVAILABLE", "COORDINATOR_LOAD_IN_PROGRESS", "_STATE", "_ASSIGNMENT_LOST",
     "_TIMED_OUT", "REQUEST_TIMED_OUT", "_TRANSPORT", "NETWORK_EXCEPTION", "_ALL_BROKERS_DOWN")
)  # fmt: skip
TOPIC_WAIT_S = 0.2  # between looks at a topic the broker does not know yet


class RasaBrokerConsumer:
    """One member of a consumer group on Rasa's event topic.

    Parameters
    ----------
    bootstrap
        Kafka bootstrap servers, ``host:port[,host:port]``.
    topic
        Rasa's event topic.
    sink
        Receives the mapped events and profile fields.
    mapper
        How Rasa events become tailorbot events.
    group
        Consumer group id; members of one group share the topic's partitions.
    batch
        Records read per turn.
    config
        Extra librdkafka properties (security, timeouts).
    connect_timeout_s
        :meth:`run` raises :class:`Unavailable` when the broker does not answer in time.
    """

    def __init__(
        self,
        bootstrap: str,
        topic: str,
        sink: RasaSink,
        mapper: RasaEventMapper | None = None,
        group: str = "tailorbot-rasa",
        batch: int = 500,
        config: Mapping[str, Any] | None = None,
        connect_timeout_s: float = CONNECT_TIMEOUT_S,
    ) -> None:
        self.bootstrap = bootstrap
        self.topic = topic
        self.sink = sink
        self.mapper = mapper or RasaEventMapper()
        self.group = group
        self.batch = batch
        self.config = dict(config or {})
        self.connect_timeout_s = connect_timeout_s
        self.ingested = 0  # tailorbot events handed to the sink
        self.skipped = 0  # records that were not usable Rasa events
        self.committed = 0  # records whose offsets were committed
        self._stop = threading.Event()
        self._consumer: Any = None

    def run(self, max_idle_s: float | None = None, until_end: bool = False) -> bool:
        """Consume until :meth:`stop`, or ``max_idle_s`` without a record, or, with
        ``until_end``, once every partition this member was given has been read and
        committed to its end (a backfill of what the topic holds, for a one-off import).
        Returns whether it ended there."""
        from confluent_kafka import Consumer

        settings = {
            "bootstrap.servers": self.bootstrap,
            "group.id": self.group,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            **self.config,
        }
        if until_end:
            _check_eager(settings)
            settings["enable.partition.eof"] = True
        self._check_broker(settings)
        # librdkafka's own lines through Python's logging, not straight to stderr
        self._consumer = Consumer({**settings, "logger": logger})
        try:
            if until_end:
                self._check_topic()
            ends = _PartitionEnds()
            self._consumer.subscribe(
                [self.topic], on_assign=ends.assigned, on_revoke=ends.revoked,
                on_lost=ends.revoked,
            )  # fmt: skip
            idle_since = time.monotonic()
            pause = 0.1
            while not self._stop.is_set():
                messages = self._consumer.consume(self.batch, 0.5)
                records = [m for m in messages if not self._is_error(m, ends)]
                if not records:
                    if until_end and ends.all_read():
                        return True
                    if max_idle_s is not None and time.monotonic() - idle_since > max_idle_s:
                        return False
                    continue
                idle_since = time.monotonic()
                if self._process(records):
                    pause = 0.1
                else:
                    # read again after the pause (a partition revoked meanwhile, by its new
                    # owner): not at their end until then
                    ends.reread(_position(r)[0] for r in records)
                    self._rewind(records)
                    self._stop.wait(pause)
                    pause = min(pause * 2, MAX_BACKOFF_S)
                if until_end and ends.all_read():
                    return True
            return False
        finally:
            self._consumer.close()
            self._consumer = None

    def stop(self) -> None:
        self._stop.set()

    def _check_topic(self) -> None:
        """Raise :class:`UnknownTopic` when the broker does not have the topic (after
        ``connect_timeout_s``: a new topic's metadata may not have reached every broker) or
        answers it with another error (not authorized): librdkafka leaves such a topic out
        of the group's assignment, which would read as a backfill of nothing, done. (A
        consumer that runs until stopped may wait for Rasa to create it; a backfill may
        not.)"""
        from confluent_kafka import KafkaError, KafkaException

        transient = (KafkaError.UNKNOWN_TOPIC_OR_PART, KafkaError.LEADER_NOT_AVAILABLE)
        deadline = time.monotonic() + self.connect_timeout_s
        while True:
            try:
                found = self._consumer.list_topics(self.topic, timeout=self.connect_timeout_s)
            except KafkaException as exc:
                raise Unavailable(f"kafka broker {self.bootstrap}: {exc.args[0].str()}") from None
            topic = found.topics.get(self.topic)
            error = None if topic is None else topic.error
            if topic is not None and error is None and topic.partitions:
                return
            if error is not None and error.code() not in transient:
                raise UnknownTopic(f"topic {self.topic!r}: {error.str()}")
            if time.monotonic() >= deadline:
                raise UnknownTopic(f"the broker has no topic {self.topic!r}")
            time.sleep(TOPIC_WAIT_S)

    def _check_broker(self, settings: Mapping[str, Any]) -> None:
        """Raise :class:`KafkaConfigError` for settings librdkafka refuses and
        :class:`Unavailable` when the broker does not answer: a consumer would otherwise
        retry forever, printing a connection failure every second."""
        from confluent_kafka import Consumer, KafkaException

        from tailorbot.log.kafka_support import unreachable_reason

        try:
            reason = unreachable_reason(Consumer, settings, self.connect_timeout_s)
        except KafkaException as exc:
            raise KafkaConfigError(exc.args[0].str()) from None
        if reason is not None:
            raise Unavailable(
                f"kafka broker {self.bootstrap} unreachable "
                f"(no answer in {self.connect_timeout_s:g} s): {reason}"
            )

    # --- one batch --------------------------------------------------------------------
    def _process(self, records: list[Message]) -> bool:
        """Map, hand over, commit; False when the sink was unavailable or the commit failed
        (the batch is to be read again, and counted when it is done: its events are appended
        again, harmlessly, but they are the same events)."""
        counted = (self.ingested, self.skipped)
        done = self._hand_over(records) and self._commit(records)
        if not done:
            self.ingested, self.skipped = counted
        return done

    def _hand_over(self, records: list[Message]) -> bool:
        """Map the records and give the sink their events and profile fields; False when it
        was unavailable."""
        batch = RasaBatch()
        dated: dict[str, dict[str, float]] = {}  # user -> field -> when its slot was set
        for record in records:
            self._map_record(record, batch, dated)
        try:
            if batch.events:
                self._ingest(batch.events)
            for user_id, fields in batch.profiles.items():
                self.sink.update_profile(user_id, fields, dated.get(user_id, {}))
        except (Overloaded, Unavailable) as exc:
            logger.warning("rasa consumer: %s; retrying the batch", exc.message)
            return False
        return True

    def _map_record(
        self, record: Message, batch: RasaBatch, dated: dict[str, dict[str, float]]
    ) -> None:
        try:
            raw = json.loads(record.value() or b"")
            mapped = self.mapper.map([raw])
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            self._skip(record, f"not JSON: {exc}")
            return
        except InvalidInput as exc:
            self._skip(record, "; ".join(f"{p.field}: {p.reason}" for p in exc.problems))
            return
        batch.events.extend(mapped.events)
        for user_id, fields in mapped.profiles.items():
            batch.profiles.setdefault(user_id, {}).update(fields)
        for user_id, times in mapped.field_times([raw]).items():
            dated.setdefault(user_id, {}).update(times)

    def _ingest(self, events: list[dict[str, Any]]) -> None:
        accepted = self.sink.ingest(events)
        self.ingested += accepted
        if accepted < len(events):
            # An event the schema refuses will not get better on a retry: skip it.
            self.skipped += len(events) - accepted
            logger.warning("rasa consumer: %d event(s) refused", len(events) - accepted)

    def _skip(self, record: Message, reason: str) -> None:
        self.skipped += 1
        logger.warning(
            "rasa consumer: skipped %s[%s]@%s: %s",
            record.topic(),
            record.partition(),
            record.offset(),
            reason,
        )

    def _commit(self, records: list[Message]) -> bool:
        from confluent_kafka import KafkaException, TopicPartition

        latest: dict[int, int] = {}
        for record in records:
            partition, offset = _position(record)
            latest[partition] = max(latest.get(partition, -1), offset)
        offsets = [TopicPartition(self.topic, p, o + 1) for p, o in latest.items()]
        try:
            self._consumer.commit(offsets=offsets, asynchronous=False)
        except KafkaException as exc:
            error = exc.args[0]
            if not (error.retriable() or error.name() in TRANSIENT_COMMIT_ERRORS):
                raise Unavailable(f"kafka commit failed: {error.str()}") from None
            # Lost the partition in a rebalance (its new owner re-reads from the last commit)
            # or the coordinator moved: read it again while it is ours (its event ids make
            # the second append harmless).
            logger.warning("rasa consumer: commit failed (%s); the batch is read again", exc)
            return False
        self.committed += len(records)
        return True

    def _rewind(self, records: list[Message]) -> None:
        """Seek back to the batch's first records so the next turn reads it again."""
        from confluent_kafka import KafkaException, TopicPartition

        first: dict[int, int] = {}
        for record in records:
            partition, offset = _position(record)
            first[partition] = min(first.get(partition, offset), offset)
        for partition, offset in first.items():
            try:
                self._consumer.seek(TopicPartition(self.topic, partition, offset))
            except KafkaException as exc:  # revoked meanwhile: its new owner re-reads it
                logger.warning("rasa consumer: cannot rewind partition %d: %s", partition, exc)

    @staticmethod
    def _is_error(message: Message, ends: _PartitionEnds) -> bool:
        """Whether ``message`` is an event, not a record; a record read after its
        partition's end moves that end on, an end-of-partition event is noted in ``ends``."""
        from confluent_kafka import KafkaError

        error = message.error()
        if error is None:
            ends.reread((_position(message)[0],))
            return False
        if error.code() == KafkaError._PARTITION_EOF:
            ends.reached(message.partition())
            return True
        if error.fatal():
            raise Unavailable(f"kafka consumer failed: {error.str()}")
        logger.warning("rasa consumer: %s", error.str())
        return True


class _PartitionEnds:
    """Which of the partitions assigned to this member were read to their end (librdkafka's
    end-of-partition events, asked for with ``enable.partition.eof``), for ``until_end``."""

    def __init__(self) -> None:
        self._assigned: set[int] | None = None  # None until the group's first assignment
        self._at_end: set[int] = set()

    def assigned(self, _consumer: Any, partitions: list[Any]) -> None:
        # Added to what is held: the eager protocol revokes everything before it assigns
        # (until_end refuses the cooperative ones, see _check_eager).
        new = {tp.partition for tp in partitions}
        self._assigned = (self._assigned or set()) | new
        self._at_end -= new  # read afresh from the group's commits: a new end event comes

    def revoked(self, _consumer: Any, partitions: list[Any]) -> None:
        gone = {tp.partition for tp in partitions}
        self._at_end -= gone
        if self._assigned is not None:
            self._assigned -= gone
            if not self._assigned:
                self._assigned = None  # a rebalance under way: wait for what comes next

    def reached(self, partition: int | None) -> None:
        if partition is not None:
            self._at_end.add(partition)

    def reread(self, partitions: Iterable[int]) -> None:
        self._at_end.difference_update(partitions)

    def all_read(self) -> bool:
        return self._assigned is not None and self._assigned <= self._at_end


def _check_eager(settings: Mapping[str, Any]) -> None:
    """Raise :class:`KafkaConfigError` for a cooperative rebalance protocol: it gives a
    joining member its partitions only in a second round, after an empty first one, which
    ``until_end`` would take for a member with nothing to read (and leave them unread)."""
    strategy = str(settings.get("partition.assignment.strategy", ""))
    if "cooperative" in strategy or str(settings.get("group.protocol", "classic")) != "classic":
        raise KafkaConfigError(
            "--until-end needs the eager rebalance protocol: leave out "
            "partition.assignment.strategy=cooperative-sticky and group.protocol=consumer"
        )


def _position(record: Message) -> tuple[int, int]:
    partition, offset = record.partition(), record.offset()
    if partition is None or offset is None:
        raise Unavailable("kafka returned a record without partition or offset")
    return partition, offset
