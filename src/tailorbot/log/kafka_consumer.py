"""One member of a Kafka consumer group (see :class:`tailorbot.log.kafka.KafkaEventLog`).

A real group: the broker's coordinator spreads the topic's partitions over the live
members. Offsets are committed only by :meth:`KafkaGroupConsumer.commit` (never
automatically), with the explicit next offset of each partition, after the records before
it were applied. Rebalance callbacks run inside ``consume``: on revoke (or loss) the
member drops what it had fetched of those partitions; on assign it resumes from the
group's committed offsets (the earliest offset where none).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from confluent_kafka import Consumer as ConfluentConsumer
from confluent_kafka import KafkaError, KafkaException, Message, TopicPartition

from tailorbot.log.base import Consumer, LogError, LogRecord, new_member_id
from tailorbot.log.kafka_support import client_config, consume_ready, raise_if_fatal, to_record

if TYPE_CHECKING:
    from tailorbot.log.kafka import KafkaEventLog

# Commit errors meaning "this member no longer owns the partition": skip, as the interface
# says; the new owner re-reads from the last commit.
_LOST_OWNERSHIP = {
    KafkaError.REBALANCE_IN_PROGRESS,
    KafkaError.ILLEGAL_GENERATION,
    KafkaError.UNKNOWN_MEMBER_ID,
    KafkaError._ASSIGNMENT_LOST,
    KafkaError._NO_OFFSET,
}
_PREFETCH = 500  # records fetched by assignment() while it serves rebalance callbacks


class KafkaGroupConsumer(Consumer):
    """Group member over ``confluent_kafka.Consumer``; create it with ``log.consumer(group)``."""

    def __init__(self, log: KafkaEventLog, group: str, member_id: str | None = None) -> None:
        self.log = log
        self.group = group
        self.member_id = member_id or new_member_id()
        self._owned: set[int] = set()
        self._buffer: deque[Message] = deque()
        self._closed = False
        defaults: dict[str, Any] = {
            "group.id": log.group_id(group),
            "client.id": self.member_id,
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "auto.offset.reset": "earliest",
            "session.timeout.ms": 10_000,
            # Commits share the connection with fetches; a short long-poll keeps them quick.
            "fetch.wait.max.ms": 100,
        }
        try:
            self._consumer = ConfluentConsumer(
                client_config(log.connection_config, "consumer", **defaults)
            )
            self._consumer.subscribe(
                [log.topic],
                on_assign=self._on_assign,
                on_revoke=self._on_revoke,
                on_lost=self._on_revoke,
            )
        except KafkaException as exc:
            raise LogError(f"kafka consumer for group {group!r} failed: {exc}") from exc

    # --- rebalance callbacks (run inside consume) -------------------------------------
    def _on_assign(self, consumer: ConfluentConsumer, partitions: list[TopicPartition]) -> None:
        # Returning without assign() lets the client assign them at the committed offsets.
        self._owned.update(tp.partition for tp in partitions)

    def _on_revoke(self, consumer: ConfluentConsumer, partitions: list[TopicPartition]) -> None:
        revoked = {tp.partition for tp in partitions}
        self._owned -= revoked
        self._buffer = deque(m for m in self._buffer if m.partition() not in revoked)

    # --- Consumer interface -----------------------------------------------------------
    def assignment(self) -> frozenset[int]:
        self._check_open()
        if len(self._buffer) < _PREFETCH:
            # Serving the client's queue runs pending rebalance callbacks; what it fetched
            # on the way is kept for the next poll.
            self._fetch(_PREFETCH - len(self._buffer), 0)
        return frozenset(self._owned)

    def poll(self, max_records: int, timeout_s: float = 0.0) -> list[LogRecord]:
        self._check_open()
        if max_records <= 0:
            return []
        if len(self._buffer) < max_records:
            self._fetch(max_records - len(self._buffer), timeout_s if not self._buffer else 0)
        count = min(max_records, len(self._buffer))
        messages = [self._buffer.popleft() for _ in range(count)]
        erasures = self.log.erasures
        erasures.refresh(wait=False)
        return [to_record(m) for m in messages if erasures.keep_message(m)]

    def commit(self, offsets: Mapping[int, int]) -> None:
        self._check_open()
        owned = [
            TopicPartition(self.log.topic, p, int(o))
            for p, o in offsets.items()
            if p in self._owned
        ]
        if not owned:
            return
        try:
            results = self._consumer.commit(offsets=owned, asynchronous=False) or []
        except KafkaException as exc:
            if exc.args and exc.args[0].code() in _LOST_OWNERSHIP:
                return
            raise LogError(f"kafka commit for group {self.group!r} failed: {exc}") from exc
        for tp in results:
            if tp.error is not None and tp.error.code() not in _LOST_OWNERSHIP:
                raise LogError(f"kafka commit of partition {tp.partition} failed: {tp.error}")

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._buffer.clear()
        self._owned.clear()
        try:
            self._consumer.close()  # leaves the group: the others take over at once
        except KafkaException as exc:
            raise LogError(f"kafka consumer close failed: {exc}") from exc

    # --- helpers ----------------------------------------------------------------------
    def _fetch(self, wanted: int, timeout_s: float) -> None:
        if wanted <= 0:
            return
        try:
            messages = consume_ready(self._consumer, wanted, timeout_s)
        except KafkaException as exc:
            raise LogError(f"kafka poll for group {self.group!r} failed: {exc}") from exc
        for message in messages:
            error = message.error()
            if error is not None:
                # Records already fetched stay in the buffer: raising only on fatal errors
                # keeps at-least-once delivery within this member.
                raise_if_fatal(error, f"poll for group {self.group!r}")
            elif message.partition() in self._owned:
                self._buffer.append(message)

    def _check_open(self) -> None:
        if self._closed:
            raise LogError(f"kafka consumer {self.member_id!r} of group {self.group!r} is closed")
