"""The engine: one object that wires settings, event log, online store, redaction and metrics.

The API, the CLI and the decision service talk to the data plane through an :class:`Engine`:
it validates and redacts events at the door, appends them to the log in one batch, serves
feature records, applies profile changes and erasure, reports readiness and, when
``settings.run_worker_in_server`` is on, runs a stream worker in a background thread.

With ``settings.archive_url`` it also opens the archive: an archive worker thread copies the
log into it (next to the stream worker), :meth:`Engine.archive_decision` and
:meth:`Engine.archive_feedback` queue records for a background writer, and erasure reaches
the archive too.

Errors are :class:`tailorbot.errors.EngineError` subclasses carrying the HTTP status they map
to, so every caller (API handler, CLI) reports them the same way.

>>> import tempfile
>>> from tailorbot.config import Settings
>>> engine = Engine(Settings.load(data_dir=tempfile.mkdtemp(), run_worker_in_server=False))
>>> result = engine.ingest([{"type": "message", "role": "customer", "text": "hi, I am jo@ex.com",
...     "user_id": "u1", "session_id": "s1", "timestamp": _now_iso()}])
>>> result.accepted, result.results[0]["status"]
(1, 'accepted')
>>> engine.stop()
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from tailorbot.archive import ArchiveError, EventArchive, open_archive
from tailorbot.archive.writer import ArchiveWriter
from tailorbot.config import Settings
from tailorbot.errors import (
    RETRY_AFTER_S,
    InvalidInput,
    NotFound,
    Overloaded,
    PayloadTooLarge,
    Problem,
    Unavailable,
    backend_errors,
)
from tailorbot.events.codec import encode_event
from tailorbot.events.profile import UserProfile
from tailorbot.events.redact import Redactor
from tailorbot.events.schema import (
    EVENT_ADAPTER,
    FREE_TEXT_FIELDS,
    EventBase,
    event_type_names,
    validation_context,
)
from tailorbot.log import EventLog, LogError, open_log
from tailorbot.metrics import Metrics
from tailorbot.store import OnlineStore, StoreError, open_store
from tailorbot.stream.archiver import ArchiveWorker, archive_group
from tailorbot.stream.thread import WorkerThread

logger = logging.getLogger(__name__)

LAG_CACHE_S = 0.1  # backpressure reads the group's lag at most this often
ARCHIVE_FLUSH_S = 5.0  # erasure waits this long for queued decision records to be written


@dataclass(slots=True)
class IngestResult:
    """Counts and one status dict per submitted event, in order.

    An accepted event's status has its ``event_id``, ``partition`` and ``offset``; a rejected
    one (partial mode only) has ``errors``: ``[{"field", "reason"}]``.
    """

    accepted: int
    rejected: int
    results: list[dict[str, Any]] = field(default_factory=list)


# --- validation -----------------------------------------------------------------------------

_VALUE_ERROR_PREFIX = "Value error, "


def _now_iso() -> str:
    return datetime.now(UTC).isoformat()


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
        message = item["msg"].removeprefix(_VALUE_ERROR_PREFIX)
        problems.append(Problem(index, path, message))
    return problems


def _raise_for(problems: list[Problem], total: int) -> None:
    """Raise the error that fits a list of problems: 413 if a text is too long, else 422."""
    indexes = {p.index for p in problems}
    summary = f"{len(indexes)} of {total} event(s) rejected; nothing was stored"
    if any(p.too_large for p in problems):
        raise PayloadTooLarge(f"text too long: {summary}", problems=problems)
    raise InvalidInput(f"invalid events: {summary}", problems=problems)


# --- the engine -----------------------------------------------------------------------------


class Engine:
    """The data plane of one server process (or one CLI command).

    Parameters
    ----------
    settings
        The engine's settings (backends, bounds, privacy).
    metrics
        Where to count; a fresh registry when omitted.
    """

    def __init__(self, settings: Settings, metrics: Metrics | None = None) -> None:
        self.settings = settings
        self.metrics = metrics if metrics is not None else Metrics()
        self.redactor = Redactor.from_settings(settings)
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        self.log: EventLog = open_log(settings.resolved_log_url(), settings.partitions)
        try:
            self.store: OnlineStore = open_store(settings.resolved_store_url())
        except Exception:
            self.log.close()
            raise
        self.archive: EventArchive | None = None
        self._archive_writer: ArchiveWriter | None = None
        if settings.archive_url is not None:
            try:
                with backend_errors():
                    self.archive = open_archive(settings.archive_url)
            except Exception:
                self.log.close()
                self.store.close()
                raise
            self._archive_writer = ArchiveWriter(self.archive)
        self._lag_total = 0
        self._lag_read_at = float("-inf")
        self._erase_hooks: list[Callable[[str], None]] = []
        self._threads: dict[str, WorkerThread] = {}  # "worker" and "archiver", when running
        self._closed = False

    # --- ingestion ------------------------------------------------------------------------

    def ingest(self, raw_events: Sequence[Any], *, partial: bool = False) -> IngestResult:
        """Validate, redact and append a batch of raw events (dicts, as parsed from JSON).

        All-or-nothing by default: any problem raises :class:`InvalidInput` (422) or, when a
        text is too long, :class:`PayloadTooLarge` (413), listing every problem. With
        ``partial=True`` the valid events are stored and each invalid one gets its errors.
        Raises :class:`Overloaded` (429) past the lag limit, :class:`Unavailable` (503) when
        the log cannot be reached. Returns only once the accepted events are durable.
        """
        settings = self.settings
        if not raw_events:
            raise InvalidInput(
                'no events: send one event object or {"events": [...]} with at least one',
                problems=[Problem(None, "events", "empty batch")],
            )
        if len(raw_events) > settings.max_batch_events:
            raise PayloadTooLarge(
                f"batch has {len(raw_events)} events; at most {settings.max_batch_events} "
                "per request",
                problems=[Problem(None, "events", "too many events")],
            )
        self._check_backpressure()
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
            events.append((index, self.redactor.redact_event(event)))
        if problems:
            self._count_rejections(problems)
            if not partial:
                _raise_for(problems, len(raw_events))
        positions = self._append([event for _, event in events]) if events else []
        for kind, count in Counter(event.type for _, event in events).items():  # type: ignore[attr-defined]
            self.metrics.events_ingested.labels(type=kind).inc(count)
        return self._result(len(raw_events), events, positions, problems)

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
        ingested_at = time.time()
        items = [(event.user_id, encode_event(event, ingested_at)) for event in events]
        try:
            with backend_errors():
                return self.log.append(items)
        except Unavailable:
            self.metrics.events_rejected.labels(reason="unavailable").inc(len(items))
            raise

    def _count_rejections(self, problems: list[Problem]) -> None:
        by_index = {p.index: p.too_large for p in problems}
        too_large = sum(by_index.values())
        if too_large:
            self.metrics.events_rejected.labels(reason="too_large").inc(too_large)
        if len(by_index) > too_large:
            self.metrics.events_rejected.labels(reason="invalid").inc(len(by_index) - too_large)

    @staticmethod
    def _result(
        total: int,
        events: list[tuple[int, EventBase]],
        positions: list[tuple[int, int]],
        problems: list[Problem],
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
        for problem in problems:
            status = results[problem.index]  # type: ignore[index]
            if not status:
                status.update(index=problem.index, status="rejected", errors=[])
            status["errors"].append({"field": problem.field, "reason": problem.reason})
        return IngestResult(len(events), total - len(events), results)

    def _check_backpressure(self) -> None:
        now = time.monotonic()
        if now - self._lag_read_at > LAG_CACHE_S:
            with backend_errors():
                self._lag_total = sum(self.log.lag(self.settings.consumer_group).values())
            self._lag_read_at = now
        if self._lag_total > self.settings.backpressure_max_lag:
            self.metrics.events_rejected.labels(reason="backpressure").inc()
            raise Overloaded(
                f"the stream processor is {self._lag_total} events behind (limit "
                f"{self.settings.backpressure_max_lag}); retry later",
                retry_after=RETRY_AFTER_S,
            )

    # --- users ----------------------------------------------------------------------------

    def features(self, user_id: str) -> dict[str, Any]:
        """``{user_id, features, freshness}`` of a user; :class:`NotFound` when there is none."""
        from tailorbot.stream.features import feature_view

        with backend_errors():
            record = self.store.get(user_id)
            if record is None:
                raise NotFound(
                    f"no features for user {user_id!r}: unknown user, no event processed yet, "
                    "or no personalization consent"
                )
            profile = self.store.get_profile(user_id)
        now = time.time()
        return {
            "user_id": user_id,
            "features": feature_view(record, profile, now),
            "freshness": {
                "partition": record.partition,
                "offset": record.offset,
                "event_time": _iso(record.event_time),
                "updated_at": _iso(record.updated_at),
            },
        }

    def put_profile(self, user_id: str, profile: UserProfile) -> None:
        """Store the user's attributes; withdrawing personalization consent deletes the
        user's feature record (and the events it was built from stop counting)."""
        body = profile.model_dump(mode="json")
        with backend_errors():
            self.store.put_profile(user_id, body)
            if profile.consent.personalization or self.store.get(user_id) is None:
                return
            # The store has no per-record delete: erasing the store side (record, decisions,
            # watermark at the log end so earlier events never count again) and writing the
            # profile back leaves exactly the profile. It was written first so that the worker
            # already skips the user's new events meanwhile.
            partition = self.log.partition_for(user_id)
            watermark = self.log.end_offsets().get(partition, 0)
            self.store.erase_user(user_id, partition, watermark)
            self.store.put_profile(user_id, body)
        self._run_erase_hooks(user_id)

    def erase_user(self, user_id: str) -> None:
        """Forget a user everywhere: log records, feature record, profile, decisions and,
        with an archive, the user's archived events, decisions and feedback."""
        with backend_errors():
            watermark = self.log.erase_user(user_id)
            self.store.erase_user(user_id, self.log.partition_for(user_id), watermark)
            if self.archive is not None:
                self._erase_archived(self.archive, user_id)
        self._run_erase_hooks(user_id)

    def _erase_archived(self, archive: EventArchive, user_id: str) -> None:
        # Queued decision records of the user must land before the delete, not after it.
        if self._archive_writer is not None and not self._archive_writer.flush(ARCHIVE_FLUSH_S):
            raise ArchiveError("queued decision records could not be written in time")
        archive.erase_user(user_id)

    def on_erase(self, hook: Callable[[str], None]) -> None:
        """Call ``hook(user_id)`` after a user is erased (to drop in-memory caches)."""
        self._erase_hooks.append(hook)

    def _run_erase_hooks(self, user_id: str) -> None:
        for hook in self._erase_hooks:
            hook(user_id)

    # --- archive --------------------------------------------------------------------------

    def archive_decision(self, record: dict[str, Any]) -> None:
        """Queue a decision record for the archive (a no-op without one)."""
        self._to_archive("decision", record)

    def archive_feedback(self, record: dict[str, Any]) -> None:
        """Queue a feedback record for the archive (a no-op without one)."""
        self._to_archive("feedback", record)

    def _to_archive(self, kind: str, record: dict[str, Any]) -> None:
        if self._archive_writer is not None:
            with backend_errors():  # only when the queue is full and the direct write fails
                self._archive_writer.put(kind, record)

    # --- health ---------------------------------------------------------------------------

    def readiness(self) -> dict[str, Any]:
        """``{"ready": bool, "checks": {...}}``: log and store reachable, lag, worker state."""
        checks: dict[str, Any] = {}
        ready = True
        try:
            self.log.ping()
            lag = self.log.lag(self.settings.consumer_group)
            checks["log"] = "ok"
            checks["lag"] = sum(lag.values())
            if self.archive is not None:
                checks["archive_lag"] = sum(self.log.lag(archive_group(self.settings)).values())
        except LogError as exc:
            ready = False
            checks["log"] = f"unreachable: {exc}"
        try:
            self.store.ping()
            checks["store"] = "ok"
        except StoreError as exc:
            ready = False
            checks["store"] = f"unreachable: {exc}"
        if self.archive is not None:
            # Reported, not gating: serving works without the archive (it catches up later).
            try:
                self.archive.ping()
                checks["archive"] = "ok"
            except ArchiveError as exc:
                checks["archive"] = f"unreachable: {exc}"
        checks["worker"] = self.worker_state()
        if self.archive is not None:
            checks["archiver"] = self.worker_state("archiver")
        if any(thread.error is not None for thread in self._threads.values()):
            ready = False
        return {"ready": ready, "checks": checks}

    def worker_state(self, name: str = "worker") -> str:
        """State of the stream worker thread (or of the ``archiver`` thread)."""
        thread = self._threads.get(name)
        if thread is None:
            return "not running in this process"
        return thread.state()

    # --- lifecycle ------------------------------------------------------------------------

    def start_worker(self) -> None:
        """Run a stream worker and, with an archive, an archive worker in background threads
        (when the settings ask for it)."""
        if not self.settings.run_worker_in_server or self._threads:
            return
        from tailorbot.stream.worker import StreamWorker

        worker = StreamWorker(self.log, self.store, self.settings, metrics=self.metrics)
        self._threads["worker"] = WorkerThread(worker, "tailorbot-stream-worker")
        if self.archive is not None:
            archiver = ArchiveWorker(
                self.log, self.archive, self.store, self.settings, metrics=self.metrics
            )
            self._threads["archiver"] = WorkerThread(archiver, "tailorbot-archive-worker")
        for thread in self._threads.values():
            thread.start()

    def stop(self) -> None:
        """Stop the workers (if any), write the queued archive records and release the log,
        the store and the archive. Idempotent."""
        threads, self._threads = self._threads, {}
        for thread in threads.values():
            thread.stop()
        if not self._closed:
            self._closed = True
            if self._archive_writer is not None:
                self._archive_writer.close()
            if self.archive is not None:
                self.archive.close()
            self.log.close()
            self.store.close()


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat().replace("+00:00", "Z")
