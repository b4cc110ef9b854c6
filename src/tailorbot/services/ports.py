"""The narrow interfaces services take from each other (structural: any object that fits).

>>> from tailorbot.services.ingestion import IngestionService
>>> issubclass(IngestionService, EventSink), issubclass(IngestionService, EventDoor)
(True, True)
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable


@dataclass(slots=True)
class IngestResult:
    """Counts and one status dict per submitted event, in order.

    An accepted event's status has its ``event_id``, ``partition`` and ``offset``; a rejected
    one (partial mode only) has ``errors``: ``[{"field", "reason"}]``; a ``duplicate`` (the
    same event as an earlier one of the batch, stored once) has ``duplicate_of``, that one's
    index.
    """

    accepted: int
    rejected: int
    results: list[dict[str, Any]] = field(default_factory=list)
    duplicates: int = 0


@runtime_checkable
class EventSink(Protocol):
    """Where raw events go: validated, redacted and appended (see IngestionService)."""

    def ingest(
        self, raw_events: Sequence[Any], *, partial: bool = False, offered: Collection[str] = ()
    ) -> IngestResult: ...


@runtime_checkable
class EventDoor(EventSink, Protocol):
    """An :class:`EventSink` that can also check an event now and append it later (the
    decision recorder: checked on the request path, appended in its writer's batch; the
    feedback batcher)."""

    def accept(self, raw_event: Any, offered: Collection[str] = ()) -> Any: ...

    def accept_checked(self, event: Any) -> Any: ...

    def append_accepted(self, events: Sequence[Any]) -> list[tuple[int, int]]: ...


class Flushable(Protocol):
    """A queue that can be written out (the decision recorder, the archive's writer)."""

    def flush(self, timeout_s: float) -> bool: ...


class RecordArchive(Protocol):
    """Where decision and feedback records go for training data (ArchiveWriter fits)."""

    def put(self, kind: str, record: Mapping[str, Any]) -> None: ...

    def flush(self, timeout_s: float) -> bool: ...
