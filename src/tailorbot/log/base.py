"""The event-log interface, shaped like a Kafka topic.

A log holds ``num_partitions`` partitions; every record is keyed by ``user_id`` and a stable
hash of the key picks its partition, so everything of one user lands in one partition, in
order. Offsets are per partition, start at 0 and only grow (erasure may leave gaps).
Consumers join a *group*; the group's partitions are spread over its live members and each
member commits, per partition, the offset of the next record to read — after the records
before it were applied (at-least-once delivery; the stream processor makes it exactly-once
in effect by deduplicating on ``event_id``).
"""

from __future__ import annotations

import os
import socket
import uuid
import zlib
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from tailorbot.errors import BackendError


class LogError(BackendError):
    """The log is unreachable or refused an operation (maps to HTTP 503)."""

    what = "event log"


@dataclass(frozen=True, slots=True)
class LogRecord:
    partition: int
    offset: int
    key: str
    value: bytes


def new_member_id() -> str:
    """A consumer-group member name no other process takes: ``{host}-{pid}-{random}``."""
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


def partition_for(key: str, num_partitions: int) -> int:
    """Stable partition of a key: CRC-32 of its UTF-8 bytes, modulo the partition count."""
    return zlib.crc32(key.encode()) % num_partitions


class Consumer(ABC):
    """One member of a consumer group."""

    group: str
    member_id: str

    @abstractmethod
    def assignment(self) -> frozenset[int]:
        """Partitions this member owns now (also renews its membership)."""

    @abstractmethod
    def poll(self, max_records: int, timeout_s: float = 0.0) -> list[LogRecord]:
        """Next records of the owned partitions, each partition in offset order.

        After a rebalance, reading resumes from the group's committed offsets.
        """

    @abstractmethod
    def commit(self, offsets: Mapping[int, int]) -> None:
        """Commit, per partition, the next offset to read. Partitions no longer owned are
        skipped (the new owner re-reads from the last commit)."""

    @abstractmethod
    def close(self) -> None:
        """Leave the group so the others take over the partitions at once."""


class EventLog(ABC):
    """An append-only, user-partitioned event log with consumer groups."""

    num_partitions: int

    def partition_for(self, key: str) -> int:
        return partition_for(key, self.num_partitions)

    def check_partition(self, partition: int) -> None:
        """Raise ValueError unless ``partition`` is one of this log's."""
        if not 0 <= partition < self.num_partitions:
            raise ValueError(f"partition {partition} out of range 0..{self.num_partitions - 1}")

    @abstractmethod
    def append(self, items: Sequence[tuple[str, bytes]]) -> list[tuple[int, int]]:
        """Append ``(key, value)`` pairs; return ``(partition, offset)`` for each, in order.

        A batch is durable when this returns. Raises :class:`LogError` when unreachable.
        """

    @abstractmethod
    def read(self, partition: int, offset: int, max_records: int) -> list[LogRecord]:
        """Records of one partition with offset >= ``offset``, ascending (for replay)."""

    @abstractmethod
    def end_offsets(self) -> dict[int, int]:
        """Per partition, the offset the next appended record will get."""

    @abstractmethod
    def committed(self, group: str) -> dict[int, int]:
        """Per partition, the group's committed next offset (0 where none)."""

    @abstractmethod
    def consumer(self, group: str, member_id: str | None = None) -> Consumer:
        """Join ``group`` as a new member."""

    @abstractmethod
    def erase_user(self, user_id: str) -> int:
        """Remove (or mask, where the backend cannot delete) every record keyed ``user_id``.

        Returns the partition's end offset at erasure: consumers must ignore records of this
        user below it (the online store keeps that watermark).
        """

    @abstractmethod
    def ping(self) -> None:
        """Raise :class:`LogError` unless the log is reachable."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections and files."""

    def trim(self, partition: int, before: int) -> int:
        """Delete the records of ``partition`` below offset ``before`` (retention); how many.

        Offsets do not move: the next record keeps its offset. A backend whose log has a
        retention of its own (Kafka: the topic's ``retention.ms`` / ``retention.bytes``)
        raises :class:`NotImplementedError`.
        """
        raise NotImplementedError(f"{type(self).__name__} keeps its own retention")

    def lag(self, group: str) -> dict[int, int]:
        """Per partition, records appended but not yet committed by ``group``."""
        ends = self.end_offsets()
        done = self.committed(group)
        return {p: max(0, ends.get(p, 0) - done.get(p, 0)) for p in range(self.num_partitions)}

    def total_lag(self, group: str) -> int:
        """Records appended but not yet committed by ``group``, over all partitions (what
        backpressure reads; a backend may answer it in one round trip)."""
        return sum(self.lag(group).values())

    def read_all(self, partition: int, batch: int = 5000) -> list[LogRecord]:
        """Every record of a partition (for recomputation, evaluation and replay)."""
        out: list[LogRecord] = []
        offset = 0
        while True:
            chunk = self.read(partition, offset, batch)
            if not chunk:
                return out
            out.extend(chunk)
            offset = chunk[-1].offset + 1
