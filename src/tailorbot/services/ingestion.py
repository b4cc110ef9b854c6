"""Ingestion: validate, redact and append events to the log, with backpressure.

All-or-nothing by default; with ``partial=True`` the valid events are stored and each invalid
one gets its errors. Returns only once the accepted events are durable.

>>> import tempfile
>>> from tailorbot.config import Settings
>>> from tailorbot.events.codec import now_iso
>>> from tailorbot.events.redact import Redactor
>>> from tailorbot.log import open_log
>>> settings = Settings.load(data_dir=tempfile.mkdtemp())
>>> log = open_log(f"sqlite:///{settings.data_dir}/log.db", partitions=4)
>>> ingestion = IngestionService(log, Redactor.from_settings(settings), settings)
>>> result = ingestion.ingest([{"type": "message", "role": "customer", "text": "hi, jo@ex.com",
...     "user_id": "u1", "session_id": "s1", "timestamp": now_iso()}])
>>> result.accepted, result.results[0]["status"]
(1, 'accepted')
>>> log.close()
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Collection, Container, Sequence
from typing import Any

from pydantic import ValidationError

from tailorbot.config import Settings
from tailorbot.errors import (
    RETRY_AFTER_S,
    VALUE_ERROR_PREFIX,
    InvalidInput,
    Overloaded,
    PayloadTooLarge,
    Problem,
    Unavailable,
    backend_errors,
)
from tailorbot.events.batch import Repeats, conflict_reason, find_repeats
from tailorbot.events.codec import encode_event
from tailorbot.events.redact import Redactor
from tailorbot.events.schema import (
    EVENT_ADAPTER,
    FREE_TEXT_FIELDS,
    METADATA_KEY_CHARS,
    EventBase,
    event_type_names,
    validation_context,
)
from tailorbot.events.values import free_pairs_problem
from tailorbot.log.base import EventLog
from tailorbot.metrics import Metrics
from tailorbot.services.ports import IngestResult

LAG_CACHE_S = 0.1  # backpressure reads the group's lag at most this often


class IngestionService:
    """The door of the log: ``ingest`` raw events (dicts, as parsed from JSON)."""

    def __init__(
        self,
        log: EventLog,
        redactor: Redactor,
        settings: Settings,
        metrics: Metrics | None = None,
        article_ids: Container[str] | None = None,
    ) -> None:
        self.log = log
        self.redactor = redactor
        self.settings = settings
        self.metrics = metrics if metrics is not None else Metrics()
        self.article_ids = article_ids  # the knowledge base's; None: not checked
        self._lag_total = 0
        self._lag_read_at = float("-inf")
        self._lag_reading = threading.Lock()  # one request reads the lag; others use the last
        # Set by the runtime when tracing is on: writes the trace context into the events.
        self.stamp_trace: Callable[[list[EventBase]], None] | None = None
        # The bounds _outside_bounds reads for every decision's message event, read out of
        # the (frozen) settings once: each read of a pydantic field is some 400 instructions.
        self._bounds = (
            settings.max_future_skew_s,
            settings.max_event_age_s,
            settings.max_metadata_keys,
            settings.max_metadata_value_chars,
        )

    def ingest(
        self, raw_events: Sequence[Any], *, partial: bool = False, offered: Collection[str] = ()
    ) -> IngestResult:
        """Validate, redact and append a batch. ``offered``: article ids a decision offered,
        accepted even once the knowledge base has dropped them (feedback about what the
        customer was shown; they are counter keys already).

        Raises :class:`InvalidInput` (422) listing every problem or, when a text is too long,
        :class:`PayloadTooLarge` (413); :class:`Overloaded` (429) past the lag limit;
        :class:`Unavailable` (503) when the log cannot be reached.
        """
        self._check_size(raw_events)
        self._check_backpressure()
        validated, problems = self._validate(raw_events, offered)
        # Repeats are told apart before redaction: two events under one id that differ only in
        # their personal data (two e-mail addresses) are a conflict, not a duplicate.
        repeats = find_repeats(validated)
        events = [(index, self.redactor.redact_event(event)) for index, event in repeats.unique]
        problems.extend(
            Problem(index, "event_id", conflict_reason(first))
            for index, first in repeats.conflicts.items()
        )
        if problems:
            self._count_rejections(problems)
            if not partial or not events:  # partial, but nothing valid: the whole is refused
                _raise_for(problems, len(raw_events))
        positions = self._append([event for _, event in events])
        return _result(len(raw_events), events, positions, problems, repeats)

    def accept(self, raw_event: Any, offered: Collection[str] = ()) -> EventBase:
        """One event validated and redacted now, to be appended later by
        :meth:`append_accepted`: the decision recorder's message events, checked on the
        request path while their data is at hand, so that its writer thread holds the
        interpreter lock only briefly while requests wait for it, and the feedback events
        of a batch of feedback (``offered`` as for :meth:`ingest`). Raises what
        :meth:`ingest` raises for a batch of this one event (422, 413); reads no backend."""
        validated, problems = self._validate([raw_event], offered)
        if problems:
            self._count_rejections(problems)
            _raise_for(problems, 1)
        return self._redacted(validated[0][1])

    def accept_checked(self, event: EventBase) -> EventBase:
        """:meth:`accept` for an event tailorbot built from values it has checked
        (``checked_event``: the decision service's message events): redacted and stamped,
        not validated again but for the bounds the settings set, which the schema checks
        against them (its time's distance from now, its metadata's size). One outside them
        goes through :meth:`accept`, which refuses it as it refuses any other."""
        if self._outside_bounds(event):
            return self.accept({**event.__dict__})
        return self._redacted(event)

    def _redacted(self, event: EventBase) -> EventBase:
        """A valid event redacted, and stamped with the trace where tracing is on."""
        event = self.redactor.redact_event(event)
        if self.stamp_trace is not None:  # now, in the request's context: not the writer's
            self.stamp_trace([event])
        return event

    def _outside_bounds(self, event: EventBase) -> bool:
        """Whether the settings' bounds (see :func:`validation_context`) may refuse ``event``."""
        future_skew_s, event_age_s, metadata_keys, metadata_value_chars = self._bounds
        age = time.time() - event.timestamp.timestamp()
        if not -future_skew_s <= age <= event_age_s:
            return True
        problem = free_pairs_problem(
            "metadata",
            event.metadata,
            max_keys=metadata_keys,
            max_key_chars=METADATA_KEY_CHARS,
            max_value_chars=metadata_value_chars,
        )
        return problem is not None

    def append_accepted(self, events: Sequence[EventBase]) -> list[tuple[int, int]]:
        """Append events :meth:`accept` returned: (partition, offset) of each, once durable.
        Raises :class:`Overloaded` (429) past the lag limit, :class:`Unavailable` (503)
        when the log cannot be reached."""
        self._check_backpressure()
        return self._append(list(events))

    def problems(self, raw_events: Sequence[Any]) -> list[Problem]:
        """What :meth:`ingest` would refuse in ``raw_events``, one batch of any size, storing
        nothing (a caller sending many batches checks them all before the first is stored)."""
        return self._validate(raw_events)[1]

    def _check_size(self, raw_events: Sequence[Any]) -> None:
        if not raw_events:
            raise InvalidInput(
                'no events: send one event object or {"events": [...]} with at least one',
                problems=[Problem(None, "events", "empty batch")],
            )
        limit = self.settings.max_batch_events
        if len(raw_events) > limit:
            raise PayloadTooLarge(
                f"batch has {len(raw_events)} events; at most {limit} per request",
                problems=[Problem(None, "events", "too many events")],
            )

    def _validate(
        self, raw_events: Sequence[Any], offered: Collection[str] = ()
    ) -> tuple[list[tuple[int, EventBase]], list[Problem]]:
        settings = self.settings
        context = validation_context(
            max_future_skew_s=settings.max_future_skew_s,
            max_event_age_s=settings.max_event_age_s,
            max_metadata_keys=settings.max_metadata_keys,
            max_metadata_value_chars=settings.max_metadata_value_chars,
        )
        events: list[tuple[int, EventBase]] = []
        problems: list[Problem] = []
        for index, raw in enumerate(raw_events):
            found = self._precheck(index, raw)
            if found:
                problems.extend(found)
                continue
            try:
                event = EVENT_ADAPTER.validate_python(raw, context=context)
            except ValidationError as exc:
                problems.extend(_problems_of(index, exc))
                continue
            unknown = self._unknown_article(index, event, offered)
            if unknown is not None:
                problems.append(unknown)
                continue
            events.append((index, event))
        return events, problems

    def _unknown_article(
        self, index: int, event: EventBase, offered: Collection[str]
    ) -> Problem | None:
        """An ``article_id`` the knowledge base does not have: refused, since article ids
        become keys of the shared counters (which would otherwise grow without bound)."""
        # From the instance's fields: getattr on a model without the field goes through
        # pydantic's __getattr__ and a formatted AttributeError (13 % of the door's CPU).
        article_id = event.__dict__.get("article_id")
        if article_id is None or self.article_ids is None or article_id in self.article_ids:
            return None
        if article_id in offered:
            return None
        return Problem(
            index, "article_id", f"unknown article {article_id!r}: not in the knowledge base"
        )

    def _precheck(self, index: int, raw: Any) -> list[Problem]:
        """Problems found before schema validation: shape and text length (413)."""
        if not isinstance(raw, dict):
            return [Problem(index, "(event)", "each event must be a JSON object")]
        limit = self.settings.max_text_chars
        return [
            Problem(
                index,
                name,
                f"text is {len(raw[name])} characters; at most {limit} are accepted",
                too_large=True,
            )
            for name in FREE_TEXT_FIELDS
            if isinstance(raw.get(name), str) and len(raw[name]) > limit
        ]

    def _append(self, events: list[EventBase]) -> list[tuple[int, int]]:
        """Append ``events`` (none: nothing to do) and count them once they are durable."""
        if not events:
            return []
        if self.stamp_trace is not None:
            self.stamp_trace(events)
        ingested_at = time.time()
        items = [(event.user_id, encode_event(event, ingested_at)) for event in events]
        try:
            with backend_errors():
                positions = self.log.append(items)
        except Unavailable:
            self.metrics.events_rejected.labels(reason="unavailable").inc(len(items))
            raise
        for kind, count in Counter(event.type for event in events).items():  # type: ignore[attr-defined]
            self.metrics.events_ingested.labels(type=kind).inc(count)
        return positions

    def _count_rejections(self, problems: list[Problem]) -> None:
        by_index = {p.index: p.too_large for p in problems}
        too_large = sum(by_index.values())
        if too_large:
            self.metrics.events_rejected.labels(reason="too_large").inc(too_large)
        if len(by_index) > too_large:
            self.metrics.events_rejected.labels(reason="invalid").inc(len(by_index) - too_large)

    def _check_backpressure(self) -> None:
        # When the cached lag is stale, one request reads it again while the concurrent ones
        # go on with the last value: they all used to read it at once, and on a slow backend
        # (Kafka: ListOffsets and the group's offsets, a round trip each) every request then
        # waited for several reads in a row.
        if time.monotonic() - self._lag_read_at > LAG_CACHE_S and self._lag_reading.acquire(
            blocking=False
        ):
            try:
                with backend_errors():
                    self._lag_total = self.log.total_lag(self.settings.consumer_group)
                self._lag_read_at = time.monotonic()  # from the end of the read
            finally:
                self._lag_reading.release()
        if self._lag_total > self.settings.backpressure_max_lag:
            self.metrics.events_rejected.labels(reason="backpressure").inc()
            raise Overloaded(
                f"the stream processor is {self._lag_total} events behind (limit "
                f"{self.settings.backpressure_max_lag}); retry later",
                retry_after=RETRY_AFTER_S,
            )


def _problems_of(index: int, error: ValidationError) -> list[Problem]:
    """Readable problems from a pydantic error of the event union (loc[0] is the type tag)."""
    problems = []
    for item in error.errors(include_url=False, include_input=False):
        kind, loc = item["type"], item["loc"]
        if kind in ("union_tag_invalid", "union_tag_not_found"):
            allowed = ", ".join(event_type_names())
            got = item.get("ctx", {}).get("tag")
            reason = (
                f"unknown event type {got!r}; allowed types: {allowed}"
                if kind == "union_tag_invalid"
                else f"missing; allowed types: {allowed}"
            )
            problems.append(Problem(index, "type", reason))
            continue
        path = ".".join(str(part) for part in loc[1:]) or "(event)"
        message = item["msg"].removeprefix(VALUE_ERROR_PREFIX)
        problems.append(Problem(index, path, message))
    return problems


def _raise_for(problems: list[Problem], total: int) -> None:
    """Raise the error that fits a list of problems: 413 if a text is too long, else 422."""
    indexes = {p.index for p in problems}
    summary = f"{len(indexes)} of {total} event(s) rejected; nothing was stored"
    if any(p.too_large for p in problems):
        raise PayloadTooLarge(f"text too long: {summary}", problems=problems)
    raise InvalidInput(f"invalid events: {summary}", problems=problems)


def _result(
    total: int,
    events: list[tuple[int, EventBase]],
    positions: list[tuple[int, int]],
    problems: list[Problem],
    repeats: Repeats,
) -> IngestResult:
    results: list[dict[str, Any]] = [{} for _ in range(total)]
    for (index, event), (partition, offset) in zip(events, positions, strict=True):
        results[index] = {
            "index": index,
            "status": "accepted",
            "event_id": event.event_id,
            "partition": partition,
            "offset": offset,
        }
    for index, first in repeats.duplicates.items():
        results[index] = {
            "index": index,
            "status": "duplicate",
            "event_id": results[first]["event_id"],
            "duplicate_of": first,
        }
    for problem in problems:
        status = results[problem.index]  # type: ignore[index]
        if not status:
            status.update(index=problem.index, status="rejected", errors=[])
        status["errors"].append({"field": problem.field, "reason": problem.reason})
    duplicates = len(repeats.duplicates)
    return IngestResult(len(events), total - len(events) - duplicates, results, duplicates)
