"""The event log on a Kafka-protocol broker (Apache Kafka, Redpanda, Amazon MSK, Tansu).

URL: ``kafka://host:port[,host:port...][?option=value&...]``. Options without a dot are
tailorbot's; options with a dot are librdkafka properties passed to every client as is:

* ``topic`` (default ``tailorbot-events``): keyed by user id; the partition is chosen here
  with :func:`tailorbot.log.base.partition_for`, so every backend agrees where a user lives.
  Created with ``TAILORBOT_PARTITIONS`` partitions when missing; an existing topic with
  another count is refused (Kafka cannot shrink a topic, and growing it moves users).
* ``group_prefix`` (default empty): put before every consumer-group id, so that several
  deployments (or test runs) can share a cluster without sharing groups.
* ``erasures_topic`` (default ``<topic>-erasures``), ``replication_factor`` (default -1:
  the broker's default), ``retention_ms`` (``retention.ms`` of the events topic, applied
  when it is created), ``timeout_s`` (default 10), ``exact_end_offsets`` (default true:
  correct brokers whose ListOffsets answer is low, see below). In production create both
  topics ahead (replication factor 3, ``min.insync.replicas=2``, the events topic's
  ``retention.ms``); tailorbot then only checks the partition count.

Writes use an idempotent producer (``enable.idempotence=true``, ``acks=all``): ``append``
returns when every record is acknowledged, with offsets from the delivery reports, or
raises :class:`~tailorbot.log.base.LogError`. Consumers are real consumer groups that
commit explicit offsets after applying (:mod:`tailorbot.log.kafka_consumer`); a member that
crashes is replaced after ``session.timeout.ms`` (10 s unless set in the URL), one that
stops polling after ``max.poll.interval.ms`` (librdkafka's default, 5 min).

Security — any librdkafka property goes in the query (URL-encode the values), or the SASL
user and password go before the hosts (``kafka://user:password@host:port``):

* Apache Kafka, SASL/SCRAM over TLS: ``kafka://b1:9093,b2:9093?security.protocol=SASL_SSL
  &sasl.mechanism=SCRAM-SHA-512&sasl.username=tailorbot&sasl.password=...
  &ssl.ca.location=/etc/kafka/ca.pem``
* Redpanda (Cloud or self-hosted): the same with ``sasl.mechanism=SCRAM-SHA-256``; a
  certificate from a public CA needs ``ssl.ca.location=probe`` (system trust store).
* Amazon MSK: TLS listener (port 9094) ``security.protocol=SSL``; SASL/SCRAM listener
  (port 9096) ``security.protocol=SASL_SSL&sasl.mechanism=SCRAM-SHA-512`` with the
  Secrets Manager credentials. IAM auth (port 9098) needs a token callback: not supported.

Erasure — Kafka cannot delete single records, so :meth:`KafkaEventLog.erase_user` *masks*:
it measures W, the exact end offset of the user's partition, and writes a marker
``sha256(user) -> W`` to the erasures topic (one partition, ``cleanup.policy=compact``,
``retention.ms=-1``; the key is :func:`tailorbot.events.erasure.user_digest`, never the user
id). What is guaranteed:

* every record of the user acknowledged before ``erase_user`` was called has an offset
  < W, and ``read`` (replay) never returns one: it catches up with all markers first;
* group consumers drop them too: a member loads every marker before its first records;
  markers written later by another process arrive asynchronously (about 0.1 s), so the
  stream processor also drops events below the watermark the online store keeps
  (``FeatureStore.erase``);
* the bytes stay in the broker until retention deletes their segment: set ``retention.ms``
  on the events topic (e.g. 7 days: ``retention_ms=604800000``) to bound how long erased
  data physically remains; broker backups, mirrors and tiered storage are not covered;
* a digest of a guessable user id can be confirmed by someone who guesses the id.

A marker *in the events topic* would have written the user id again (as its key) and
forced every consumer to recognise a foreign record; the side topic keeps both out.

Tansu (the test broker) answers ListOffsets with the last batch's base offset + 1, too low
when that batch holds several records; with ``exact_end_offsets`` the end is read from a
fetch from that base offset instead (one extra round trip, exact on every broker).

>>> log = KafkaEventLog.from_url("kafka://127.0.0.1:9092?topic=x", partitions=4)  # doctest: +SKIP
>>> log.append([("u1", b"{}")])  # doctest: +SKIP
[(2, 0)]
"""

from __future__ import annotations

import functools
import threading
import time
import weakref
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from confluent_kafka import (
    ConsumerGroupTopicPartitions,
    KafkaError,
    KafkaException,
    Message,
    Producer,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient, NewTopic, OffsetSpec

from tailorbot.log.base import EventLog, LogError, LogRecord
from tailorbot.log.kafka_consumer import KafkaGroupConsumer
from tailorbot.log.kafka_support import (
    ErasureIndex,
    PartitionReader,
    client_config,
    parse_kafka_url,
    position,
    to_record,
    unreachable_reason,
)


class KafkaEventLog(EventLog):
    """Event log on a Kafka topic; one instance is safe to share between threads.

    Each call to :meth:`consumer` opens a group member (its own connection); close it.
    """

    def __init__(
        self,
        bootstrap_servers: str,
        topic: str = "tailorbot-events",
        num_partitions: int = 8,
        *,
        erasures_topic: str | None = None,
        group_prefix: str = "",
        replication_factor: int = -1,
        retention_ms: int | None = None,
        config: Mapping[str, Any] | None = None,
        timeout_s: float = 10.0,
        exact_end_offsets: bool = True,
    ) -> None:
        if num_partitions < 1:
            raise ValueError(f"num_partitions must be >= 1, got {num_partitions}")
        self.bootstrap_servers = bootstrap_servers
        self.topic = topic
        self.num_partitions = num_partitions
        self.erasures_topic = erasures_topic
        self.group_prefix = group_prefix
        self.replication_factor = replication_factor
        self.retention_ms = retention_ms
        self.config = config
        self.timeout_s = timeout_s
        self.exact_end_offsets = exact_end_offsets
        self._reader: PartitionReader | None = None
        self._members: weakref.WeakSet[KafkaGroupConsumer] = weakref.WeakSet()
        self._reader_lock = threading.Lock()
        admin_config = client_config(self.connection_config, "admin")
        try:
            # a quiet probe first: the admin client's log would print ~190 lines meanwhile
            reason = unreachable_reason(AdminClient, admin_config, timeout_s)
        except KafkaException as exc:
            raise ValueError(f"invalid kafka client setting: {exc}") from exc
        if reason is not None:
            raise LogError(f"kafka at {bootstrap_servers} is unreachable: {reason}")
        self._admin = AdminClient(admin_config)
        topic_config = {} if retention_ms is None else {"retention.ms": str(retention_ms)}
        self._ensure_topic(topic, num_partitions, topic_config)
        erasures = erasures_topic or f"{topic}-erasures"
        self._ensure_topic(erasures, 1, {"cleanup.policy": "compact", "retention.ms": "-1"})
        try:
            self._producer = self._new_producer()
        except KafkaException as exc:
            raise ValueError(f"invalid kafka producer setting: {exc}") from exc
        self.erasures = ErasureIndex(self.connection_config, erasures, timeout_s)

    @classmethod
    def from_url(cls, url: str, partitions: int) -> KafkaEventLog:
        hosts, options, config = parse_kafka_url(url)
        return cls(hosts, num_partitions=partitions, config=config, **options)

    def group_id(self, group: str) -> str:
        """The Kafka consumer-group id of tailorbot's ``group``."""
        return f"{self.group_prefix}{group}"

    @property
    def connection_config(self) -> dict[str, Any]:
        """librdkafka properties every client of this log starts from."""
        return {"bootstrap.servers": self.bootstrap_servers, **(self.config or {})}

    # --- writing ----------------------------------------------------------------------
    def append(self, items: Sequence[tuple[str, bytes]]) -> list[tuple[int, int]]:
        return self._deliver(
            self.topic, [(key, value, self.partition_for(key)) for key, value in items]
        )

    def erase_user(self, user_id: str) -> int:
        partition = self.partition_for(user_id)
        watermark = self._ends([partition])[partition]
        digest, marker = ErasureIndex.marker(user_id, partition, watermark)
        self._deliver(self.erasures.topic, [(digest, marker, 0)])
        self.erasures.note(digest, watermark)
        return watermark

    # --- reading ----------------------------------------------------------------------
    def read(self, partition: int, offset: int, max_records: int) -> list[LogRecord]:
        self.check_partition(partition)
        if max_records <= 0:
            return []
        offset = max(0, offset)
        # A fetch past the end neither returns nor fails on every broker: answer it here.
        listed = self._listed_ends([partition])
        if offset >= listed[partition] and offset >= self._ends([partition], listed)[partition]:
            return []
        self.erasures.refresh(wait=True)
        messages = self._partition_reader().read(
            partition, offset, max_records, self.erasures.keep_message
        )
        return [to_record(m) for m in messages]

    def end_offsets(self) -> dict[int, int]:
        return self._ends(list(range(self.num_partitions)))

    def committed(self, group: str) -> dict[int, int]:
        request = ConsumerGroupTopicPartitions(
            self.group_id(group),
            [TopicPartition(self.topic, p) for p in range(self.num_partitions)],
        )
        try:
            futures = self._admin.list_consumer_group_offsets(
                [request], request_timeout=self.timeout_s
            )
            result = futures[self.group_id(group)].result()
        except KafkaException as exc:
            raise LogError(f"kafka committed offsets of group {group!r}: {exc}") from exc
        done = {p: 0 for p in range(self.num_partitions)}
        for tp in result.topic_partitions:
            if tp.offset >= 0:
                done[tp.partition] = tp.offset
        return done

    def consumer(self, group: str, member_id: str | None = None) -> KafkaGroupConsumer:
        member = KafkaGroupConsumer(self, group, member_id)
        self._members.add(member)
        return member

    # --- lifecycle --------------------------------------------------------------------
    def ping(self) -> None:
        try:
            metadata = self._admin.list_topics(timeout=min(self.timeout_s, 5.0))
        except KafkaException as exc:
            raise LogError(f"kafka at {self.bootstrap_servers} is unreachable: {exc}") from exc
        if self.topic not in metadata.topics:
            raise LogError(f"kafka topic {self.topic!r} is missing")

    def close(self) -> None:
        """Flush, and close the members still open: a forgotten member would stay in its
        group, heartbeating, and slow every rebalance (stop the threads polling them first)."""
        for member in list(self._members):
            member.close()
        self._producer.flush(self.timeout_s)
        with self._reader_lock:
            if self._reader is not None:
                self._reader.close()
                self._reader = None
        self.erasures.close()

    # --- helpers ----------------------------------------------------------------------
    def _new_producer(self) -> Producer:
        defaults = {
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": 5,
            # A record not acknowledged in time is reported as failed, not retried forever.
            "message.timeout.ms": int(self.timeout_s * 1000),
        }
        return Producer(client_config(self.connection_config, "producer", **defaults))

    def _deliver(
        self, topic: str, items: Sequence[tuple[str, bytes, int]]
    ) -> list[tuple[int, int]]:
        """Produce ``(key, value, partition)`` records and wait for every delivery report."""
        if not items:
            return []
        results: list[tuple[int, int] | None] = [None] * len(items)
        errors: list[KafkaError] = []
        done = threading.Condition()
        pending = [len(items)]

        def report(index: int, error: KafkaError | None, message: Message) -> None:
            # Runs in whichever thread serves the producer: guard the shared counters.
            with done:
                if error is not None:
                    errors.append(error)
                else:
                    results[index] = position(message)
                pending[0] -= 1
                done.notify_all()

        deadline = time.monotonic() + self.timeout_s
        producer = self._producer
        for index, (key, value, partition) in enumerate(items):
            self._produce(
                producer,
                topic,
                key,
                value,
                partition,
                deadline,
                functools.partial(report, index),
            )
        # Wait for this call's own delivery reports only: flush() would also wait for what
        # other threads keep producing meanwhile, so under load every append would wait
        # for all the others (a convoy).
        while pending[0] and time.monotonic() < deadline:
            producer.poll(0.001)
        if errors:
            if any(e.fatal() for e in errors):
                self._producer = self._new_producer()  # a fatal error ends a producer
            raise LogError(f"kafka append to {topic} failed: {errors[0].str()}")
        if pending[0]:
            raise LogError(f"kafka append to {topic} timed out after {self.timeout_s}s")
        return [r for r in results if r is not None]

    def _produce(
        self,
        producer: Producer,
        topic: str,
        key: str,
        value: bytes,
        partition: int,
        deadline: float,
        on_delivery: Callable[[KafkaError | None, Message], None],
    ) -> None:
        while True:
            try:
                producer.produce(
                    topic, value=value, key=key, partition=partition, on_delivery=on_delivery
                )
                return
            except BufferError:  # local queue full: let deliveries drain it
                if time.monotonic() > deadline:
                    raise LogError(f"kafka producer queue full for {self.timeout_s}s") from None
                producer.poll(0.05)
            except KafkaException as exc:
                raise LogError(f"kafka append to {topic} failed: {exc}") from exc

    def _listed_ends(self, partitions: list[int]) -> dict[int, int]:
        """End offsets as the broker's ListOffsets reports them."""
        request = {TopicPartition(self.topic, p): OffsetSpec.latest() for p in partitions}
        try:
            futures = self._admin.list_offsets(request, request_timeout=self.timeout_s)
            return {tp.partition: future.result().offset for tp, future in futures.items()}
        except KafkaException as exc:
            raise LogError(f"kafka end offsets of {self.topic}: {exc}") from exc

    def _ends(self, partitions: list[int], listed: dict[int, int] | None = None) -> dict[int, int]:
        """Exact end offsets of ``partitions`` (``listed``: their ListOffsets answer)."""
        if listed is None:
            listed = self._listed_ends(partitions)
        if not self.exact_end_offsets:
            return listed
        # The last batch starts at ``listed - 1``; reading it finds the true end.
        starts = {p: end - 1 for p, end in listed.items() if end > 0}
        exact = self._partition_reader().ends(starts)
        return {p: max(end, exact.get(p, 0)) for p, end in listed.items()}

    def _partition_reader(self) -> PartitionReader:
        with self._reader_lock:
            if self._reader is None:
                self._reader = PartitionReader(self.connection_config, self.topic, self.timeout_s)
            return self._reader

    def _ensure_topic(self, name: str, partitions: int, config: dict[str, str]) -> None:
        """Create topic ``name`` when missing; refuse one with another partition count."""
        count = self._partition_count(name)
        if count is None:
            new = NewTopic(
                name,
                num_partitions=partitions,
                replication_factor=self.replication_factor,
                config=config,
            )
            try:
                self._admin.create_topics([new], request_timeout=self.timeout_s)[name].result()
            except KafkaException as exc:
                if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:  # lost a race: fine
                    raise LogError(f"kafka could not create topic {name!r}: {exc}") from exc
            deadline = time.monotonic() + self.timeout_s
            while (count := self._partition_count(name)) is None:  # metadata propagates
                if time.monotonic() > deadline:
                    raise LogError(f"kafka topic {name!r} did not appear after creation")
                time.sleep(0.05)
        if count != partitions:
            raise LogError(
                f"kafka topic {name!r} has {count} partitions but {partitions} are configured "
                "(TAILORBOT_PARTITIONS); users would land in other partitions: use a new topic "
                "(?topic=...) or set the partition count to match"
            )

    def _partition_count(self, name: str) -> int | None:
        try:
            metadata = self._admin.list_topics(timeout=self.timeout_s)
        except KafkaException as exc:
            raise LogError(f"kafka at {self.bootstrap_servers} is unreachable: {exc}") from exc
        topic = metadata.topics.get(name)
        if topic is None or topic.error is not None:
            return None
        return len(topic.partitions)
