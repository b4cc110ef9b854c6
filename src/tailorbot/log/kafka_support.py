"""Pieces shared by the Kafka log and its group consumer (see :mod:`tailorbot.log.kafka`).

* :func:`parse_kafka_url` — the ``kafka://`` URL: brokers, tailorbot options, librdkafka.
* :func:`client_config` — one user configuration split per librdkafka client kind.
* :class:`PartitionReader` — a group-less consumer for replay and exact end offsets.
* :class:`ErasureIndex` — the erasure markers of the ``*-erasures`` topic, in memory.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any, Literal
from urllib.parse import parse_qsl, unquote, urlsplit

import orjson
from confluent_kafka import Consumer as ConfluentConsumer
from confluent_kafka import KafkaError, KafkaException, Message, TopicPartition

from tailorbot.events.erasure import user_digest
from tailorbot.log.base import LogError, LogRecord

logger = logging.getLogger(__name__)

# tailorbot's own URL options and how to read them (librdkafka properties contain a dot).
_OPTIONS: dict[str, Callable[[str], Any]] = {
    "topic": str,
    "erasures_topic": str,
    "group_prefix": str,
    "replication_factor": int,
    "retention_ms": int,
    "timeout_s": float,
    "exact_end_offsets": lambda v: v.lower() in {"1", "true", "yes", "on"},
}


def parse_kafka_url(url: str) -> tuple[str, dict[str, Any], dict[str, str]]:
    """``(bootstrap servers, tailorbot options, librdkafka properties)`` of a ``kafka://`` URL."""
    parts = urlsplit(url)
    if parts.scheme.lower() != "kafka":
        raise ValueError(f"not a kafka:// URL: {url!r}")
    userinfo, _, hosts = parts.netloc.rpartition("@")
    if not hosts:
        raise ValueError("kafka URL names no broker: expected kafka://host:port[,host:port]")
    options: dict[str, Any] = {}
    config: dict[str, str] = {}
    if userinfo:
        user, _, password = userinfo.partition(":")
        config["sasl.username"] = unquote(user)
        config["sasl.password"] = unquote(password)
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if "." in key:
            config[key] = value
        elif key in _OPTIONS:
            try:
                options[key] = _OPTIONS[key](value)
            except ValueError as exc:
                raise ValueError(f"kafka URL option {key}={value!r} is invalid: {exc}") from exc
        else:
            raise ValueError(
                f"unknown kafka URL option {key!r}; expected one of {sorted(_OPTIONS)} "
                "or a librdkafka property (a name with a dot, e.g. security.protocol)"
            )
    return hosts, options, config


# librdkafka warns when a client gets a property of the other kind; these prefixes route
# user-supplied properties to consumers or producers only (everything else goes to all).
_CONSUMER_ONLY = (
    "group.",
    "session.timeout.ms",
    "heartbeat.interval.ms",
    "max.poll.interval.ms",
    "fetch.",
    "auto.offset.reset",
    "enable.auto.",
    "auto.commit.",
    "partition.assignment.strategy",
    "isolation.level",
    "enable.partition.eof",
    "check.crcs",
    "queued.",
    "allow.auto.create",
    "max.partition.fetch.bytes",
)
_PRODUCER_ONLY = (
    "acks",
    "request.required.acks",
    "enable.idempotence",
    "linger.ms",
    "queue.buffering.",
    "batch.",
    "compression.",
    "message.timeout.ms",
    "delivery.timeout.ms",
    "retries",
    "message.send.max.retries",
    "partitioner",
    "sticky.partitioning",
    "transactional.",
    "max.in.flight",
    "enable.gapless.guarantee",
)

ClientKind = Literal["admin", "consumer", "producer"]
# Error events that describe a partition (end reached, start out of range), not a failure.
_PARTITION_EVENTS = (KafkaError._PARTITION_EOF, KafkaError._AUTO_OFFSET_RESET)


def client_config(config: Mapping[str, Any], kind: ClientKind, **defaults: Any) -> dict[str, Any]:
    """``defaults`` overlaid with the properties of ``config`` that suit a ``kind`` client."""
    out = dict(defaults)
    for key, value in config.items():
        if key.startswith(_CONSUMER_ONLY) and kind != "consumer":
            continue
        if key.startswith(_PRODUCER_ONLY) and kind != "producer":
            continue
        out[key] = value
    return out


def unreachable_reason(
    client: Callable[[dict[str, Any]], Any], config: Mapping[str, Any], timeout_s: float
) -> str | None:
    """Why no broker answered a metadata request within ``timeout_s`` (librdkafka's last
    connection error), or None when one did. ``client`` makes the probe (a ``Consumer`` or an
    ``AdminClient`` class) from ``config``; it is quiet, where a client's own log prints a
    connection failure every ~50 ms until the timeout (about 190 lines in 10 s). Raises
    ``KafkaException`` for a setting librdkafka refuses."""
    errors: list[KafkaError] = []
    probe = client({**config, "log_level": 0, "error_cb": errors.append})
    try:
        probe.list_topics(timeout=timeout_s)
        return None
    except KafkaException as exc:
        probe.poll(0)  # hands the queued connection errors to error_cb
        return str(errors[-1].str() if errors else exc.args[0].str())
    finally:
        if hasattr(probe, "close"):  # a consumer has one; an admin client holds no group
            probe.close()


def position(message: Message) -> tuple[int, int]:
    """``(partition, offset)`` of a consumed message or partition event."""
    partition, offset = message.partition(), message.offset()
    if partition is None or offset is None:
        raise LogError("kafka returned a message without partition or offset")
    return partition, offset


def to_record(message: Message) -> LogRecord:
    key = message.key()
    partition, offset = position(message)
    return LogRecord(
        partition=partition,
        offset=offset,
        key=key.decode() if isinstance(key, bytes) else (key or ""),
        value=message.value() or b"",
    )


def consume_ready(consumer: ConfluentConsumer, wanted: int, timeout_s: float) -> list[Message]:
    """What is ready now, else wait up to ``timeout_s`` for the first message only
    (``consume`` with many wanted would wait the whole timeout)."""
    ready: list[Message] = consumer.consume(wanted, 0)
    if ready or timeout_s <= 0:
        return ready
    first: list[Message] = consumer.consume(1, timeout_s)
    return first + consumer.consume(wanted - 1, 0) if first and wanted > 1 else first


def raise_if_fatal(error: KafkaError, what: str) -> None:
    """Fatal errors end the client; others are transient and librdkafka retries them."""
    if error.fatal():
        raise LogError(f"kafka {what} failed: {error.str()}")
    logger.warning("kafka %s: %s", what, error.str())


class PartitionReader:
    """A consumer outside any group: ``assign`` + seek, read until end of partition.

    The end is the fetch response's high watermark (``enable.partition.eof``), which Tansu
    reports correctly even where its ListOffsets answer is too low.
    """

    def __init__(self, config: Mapping[str, Any], topic: str, timeout_s: float) -> None:
        self.topic = topic
        self.timeout_s = timeout_s
        self._consumer = ConfluentConsumer(
            client_config(
                config,
                "consumer",
                **{
                    "group.id": f"tailorbot-reader-{uuid.uuid4().hex}",  # never joins or commits
                    "enable.auto.commit": False,
                    "enable.partition.eof": True,
                    "auto.offset.reset": "error",
                    "fetch.wait.max.ms": 10,
                },
            )
        )
        self._lock = threading.Lock()

    def read(
        self, partition: int, offset: int, max_records: int, keep: Callable[[Message], bool]
    ) -> list[Message]:
        """Up to ``max_records`` kept messages of ``partition`` from ``offset`` on."""
        with self._lock:
            out = self._collect(partition, offset, max_records, keep)
            if out is None:  # ``offset`` is out of range: past the end, or before the start
                low, _ = self._consumer.get_watermark_offsets(
                    TopicPartition(self.topic, partition), timeout=self.timeout_s
                )
                # Records before ``low`` are gone (retention): replay from the first kept one.
                out = self._collect(partition, low, max_records, keep) if offset < low else []
            return out or []

    def _collect(
        self, partition: int, offset: int, max_records: int, keep: Callable[[Message], bool]
    ) -> list[Message] | None:
        out: list[Message] = []

        def on_message(message: Message) -> None:
            if keep(message):
                out.append(message)

        outcome = self._drain({partition: offset}, on_message, lambda: len(out) >= max_records)
        return None if outcome.get(partition) == "reset" else out[:max_records]

    def ends(self, starts: Mapping[int, int]) -> dict[int, int]:
        """Exact end offset of each partition, reading from ``starts`` (at most one batch
        before the end) to the end."""
        if not starts:
            return {}
        ends = dict(starts)

        def on_message(message: Message) -> None:
            partition, offset = position(message)
            ends[partition] = max(ends[partition], offset + 1)

        with self._lock:
            outcome = self._drain(starts, on_message, lambda: False)
        for partition, result in outcome.items():
            if isinstance(result, int):
                ends[partition] = max(ends[partition], result)
        return ends

    def _drain(
        self,
        starts: Mapping[int, int],
        on_message: Callable[[Message], object],
        enough: Callable[[], bool],
    ) -> dict[int, int | str]:
        """Consume the assigned partitions until each reached its end (EOF offset) or was
        reset (``"reset"``: the start is out of range), or ``enough()``."""
        self._consumer.assign([TopicPartition(self.topic, p, o) for p, o in starts.items()])
        done: dict[int, int | str] = {}
        deadline = time.monotonic() + self.timeout_s
        try:
            while len(done) < len(starts) and not enough():
                if time.monotonic() > deadline:
                    raise LogError(f"kafka read of {self.topic} timed out after {self.timeout_s}s")
                for message in consume_ready(self._consumer, 1000, 0.05):
                    error = message.error()
                    if error is not None and error.code() not in _PARTITION_EVENTS:
                        raise_if_fatal(error, f"read of {self.topic}")
                        continue
                    partition, offset = position(message)
                    if error is None:
                        if partition not in done:
                            on_message(message)
                    elif error.code() == KafkaError._PARTITION_EOF:
                        done[partition] = offset
                    else:
                        done[partition] = "reset"
        except KafkaException as exc:
            raise LogError(f"kafka read of {self.topic} failed: {exc}") from exc
        finally:
            self._consumer.unassign()
        return done

    def close(self) -> None:
        self._consumer.close()


class ErasureIndex:
    """Erasure markers (user digest -> watermark) read from the compacted erasures topic.

    ``keep`` tells whether a record survives: not when its key's digest has a watermark
    above the record's offset. :meth:`refresh` catches up with markers other processes wrote.
    """

    def __init__(self, config: Mapping[str, Any], topic: str, timeout_s: float) -> None:
        self.topic = topic
        self.timeout_s = timeout_s
        self._config = config
        self._watermarks: dict[str, int] = {}
        self._next_offset = 0
        self._consumer: ConfluentConsumer | None = None
        self._lock = threading.Lock()

    @staticmethod
    def marker(user_id: str, partition: int, watermark: int) -> tuple[str, bytes]:
        """The ``(key, value)`` of an erasure marker: a digest, never the user id."""
        return user_digest(user_id), orjson.dumps({"partition": partition, "watermark": watermark})

    def note(self, digest: str, watermark: int) -> None:
        with self._lock:
            self._watermarks[digest] = max(watermark, self._watermarks.get(digest, 0))

    def watermark(self, user_id: str) -> int | None:
        return self._watermarks.get(user_digest(user_id))

    def keep(self, key: bytes | str | None, offset: int) -> bool:
        if not self._watermarks or key is None:
            return True
        user_id = key.decode() if isinstance(key, bytes) else key
        watermark = self._watermarks.get(user_digest(user_id))
        return watermark is None or offset >= watermark

    def keep_message(self, message: Message) -> bool:
        return self.keep(message.key(), position(message)[1])

    def refresh(self, wait: bool) -> None:
        """Read new markers; with ``wait`` (always the first time), up to the topic's end as
        the broker reports it."""
        with self._lock:
            wait = wait or self._consumer is None
            consumer = self._ensure_consumer()
            try:
                target = 0
                if wait:
                    _, target = consumer.get_watermark_offsets(
                        TopicPartition(self.topic, 0), timeout=self.timeout_s
                    )
                deadline = time.monotonic() + self.timeout_s
                while True:
                    messages = consume_ready(
                        consumer, 1000, 0.05 if self._next_offset < target else 0
                    )
                    for message in messages:
                        self._apply(message)
                    if self._next_offset >= target and not messages:
                        return
                    if time.monotonic() > deadline:
                        raise LogError(f"kafka erasure markers of {self.topic} timed out")
            except KafkaException as exc:
                raise LogError(f"kafka erasure markers of {self.topic}: {exc}") from exc

    def _apply(self, message: Message) -> None:
        error = message.error()
        if error is not None:
            if error.code() != KafkaError._PARTITION_EOF:
                raise_if_fatal(error, f"read of {self.topic}")
            return
        self._next_offset = position(message)[1] + 1
        key = message.key()
        if key is None:
            return
        marker = orjson.loads(message.value() or b"{}")
        digest = key.decode()
        self._watermarks[digest] = max(int(marker["watermark"]), self._watermarks.get(digest, 0))

    def _ensure_consumer(self) -> ConfluentConsumer:
        if self._consumer is None:
            self._consumer = ConfluentConsumer(
                client_config(
                    self._config,
                    "consumer",
                    **{
                        "group.id": f"tailorbot-erasures-{uuid.uuid4().hex}",  # never commits
                        "enable.auto.commit": False,
                        "auto.offset.reset": "earliest",
                        "fetch.wait.max.ms": 50,
                    },
                )
            )
            self._consumer.assign([TopicPartition(self.topic, 0, 0)])
        return self._consumer

    def close(self) -> None:
        with self._lock:
            if self._consumer is not None:
                self._consumer.close()
                self._consumer = None
