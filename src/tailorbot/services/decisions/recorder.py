"""Recording decisions off the request path: a bounded queue written in batches.

``/v1/personalize`` answers once its decision is *queued*; a background thread writes the
queued decisions every ``flush_s`` (or as soon as ``batch`` are waiting): one log append for
all their message events, then one decision-store write, then the archive queue. A message
event is validated and redacted by the ingestion service when its decision is queued, on the
request path: the writer thread then holds the interpreter lock only for short stretches
between its writes (validating a batch held it for a millisecond or more at a time, and every
request of the event loop waited meanwhile). Many decisions share one SQLite transaction
(one Redis pipeline, one producer flush), which costs far less per decision than two writes
each on the request path.

What a crash can lose: decisions queued and not yet written (at most ``flush_s`` worth, plus
a batch being retried while a backend is down); their feedback then answers 404 and their
message events never reach the features. Events accepted by ``POST /v1/events`` are not
affected: that path still answers only once its events are durable. The queue is bounded:
when it is full (a backend down for long), ``record`` refuses with 503 at once rather than
letting memory grow.

Feedback may only follow a written decision: :meth:`DecisionRecorder.wait_written` flushes
a decision still queued in this process before its feedback is applied, and ``erase_user``
flushes the queue first, so a queued decision never lands after its user's erasure.

>>> import tempfile
>>> from tailorbot.config import Settings
>>> from tailorbot.events.codec import now_iso
>>> from tailorbot.events.redact import Redactor
>>> from tailorbot.log import open_log
>>> from tailorbot.services.ingestion import IngestionService
>>> from tailorbot.store import open_stores
>>> settings = Settings.load(data_dir=tempfile.mkdtemp())
>>> log = open_log(settings.resolved_log_url(), 4)
>>> stores = open_stores(settings.resolved_store_url())
>>> recorder = DecisionRecorder(IngestionService(log, Redactor.from_settings(settings), settings),
...                             stores.decisions, flush_s=0.01)
>>> recorder.start()
>>> message = {"type": "message", "event_id": "d1-message", "user_id": "u1", "session_id": "s1",
...            "timestamp": now_iso(), "role": "customer", "text": "hi"}
>>> recorder.record({"decision_id": "d1", "user_id": "u1"}, message)
>>> recorder.wait_written("d1", timeout_s=5.0), stores.decisions.get("d1")["user_id"]
(True, 'u1')
>>> recorder.close(); log.close(); stores.close()
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from tailorbot._priority import lower_this_thread
from tailorbot.errors import RETRY_AFTER_S, EngineError, Unavailable
from tailorbot.events.schema import EventBase
from tailorbot.services.ports import EventDoor, RecordArchive
from tailorbot.store.base import DecisionStore

logger = logging.getLogger(__name__)

MAX_BACKOFF_S = 2.0  # the longest pause between retries of a failed batch
BATCH = 500  # the most decisions one write takes, by default


@dataclass(slots=True)
class _Batch:
    """Decisions taken off the queue together, and how far their writing got (a retry then
    writes only what is left): ``appended`` once their events are in the log, ``stored``
    once the records are (``written``: the ids the store took), and the first ``archived``
    records gone past the archive."""

    records: list[dict[str, Any]]
    events: list[Any]  # accepted message events (EventDoor.accept)
    appended: bool = False
    stored: bool = False
    written: set[str] = field(default_factory=set)
    archived: int = 0
    ids: set[str] = field(default_factory=set)


class DecisionRecorder:
    """Writes decision records and their message events in batches from a daemon thread.

    ``events`` checks and appends the message events (the ingestion service);
    ``decisions`` stores the records; ``archive`` (optional) queues them for the archive.
    ``max_pending`` bounds the queue; ``batch`` is the most decisions one write takes (at
    most the door's ``max_batch_events``: their message events are one append).
    ``yield_core``: the writer thread runs at a lower CPU priority (:mod:`tailorbot._priority`;
    off where it may start threads that must not inherit it).
    """

    def __init__(
        self,
        events: EventDoor,
        decisions: DecisionStore,
        archive: RecordArchive | None = None,
        flush_s: float = 0.02,
        max_pending: int = 10_000,
        batch: int = BATCH,
        yield_core: bool = True,
    ) -> None:
        self.events = events
        self.decisions = decisions
        self.archive = archive
        self.flush_s = flush_s
        self.max_pending = max_pending
        self.batch = batch
        self.yield_core = yield_core
        self._queue: deque[tuple[dict[str, Any], Any]] = deque()  # (record, accepted event)
        self._queued_ids: set[str] = set()  # queued or in the batch being written
        self._writing: set[str] = set()  # the batch being written (taken off the queue)
        self._cond = threading.Condition()
        self._urgent = False
        self._closed = False
        self._thread: threading.Thread | None = None
        self.written = 0
        self.failures = 0

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._run, name="tailorbot-decision-recorder", daemon=True
            )
            self._thread.start()

    # --- the request side ---------------------------------------------------------------

    def record(self, record: dict[str, Any], message_event: dict[str, Any] | EventBase) -> None:
        """Queue a decision and its message event; 503 when the queue is full. The event, a
        dict, is checked now (an event model, built from checked values, is only redacted);
        one the door refuses (a bug: the service built it) is logged and costs only itself:
        its decision is still written."""
        try:
            if isinstance(message_event, EventBase):
                accepted = self.events.accept_checked(message_event)
            else:
                accepted = self.events.accept(message_event)
        except EngineError as exc:
            accepted = None
            event_id = (
                message_event.event_id
                if isinstance(message_event, EventBase)
                else message_event.get("event_id")
            )
            logger.error("the message event %s was refused: %s", event_id, exc.message)
        with self._cond:
            if self._closed:
                raise Unavailable("the decision recorder is closed", retry_after=RETRY_AFTER_S)
            if len(self._queued_ids) >= self.max_pending:
                raise Unavailable(
                    f"{len(self._queued_ids)} decisions are waiting to be written (limit "
                    f"{self.max_pending}): a backend is slow or down; retry later",
                    retry_after=RETRY_AFTER_S,
                )
            self._queue.append((record, accepted))
            self._queued_ids.add(record["decision_id"])
            if len(self._queue) == 1 or len(self._queue) >= self.batch:
                self._cond.notify_all()  # the first starts the linger, a full batch ends it

    def wait_written(self, decision_id: str, timeout_s: float) -> bool:
        """Flush at once if ``decision_id`` is still queued here and wait until it is written;
        False if that took longer than ``timeout_s``. True for a decision not queued here."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while decision_id in self._queued_ids:
                if decision_id not in self._writing:  # else the write under way takes it
                    self._hurry()
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not self._cond.wait(remaining):
                    return decision_id not in self._queued_ids
            return True

    def flush(self, timeout_s: float) -> bool:
        """Write everything queued now; False if that took longer than ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while self._queued_ids:
                if self._thread is None or not self._thread.is_alive():
                    return False
                self._hurry()
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(remaining)
            return True

    def _hurry(self) -> None:
        """Have the writer take what is queued without its linger (the lock held). Nothing
        queued, the rest is in the batch being written: an urgency set then would outlive
        it and cut the linger of the next decision's batch short (a batch of one). Notified
        once until the writer takes a batch: waiters woken by each other's notifications
        would otherwise wake each other in turn while a write is slow."""
        if self._queue and not self._urgent:
            self._urgent = True
            self._cond.notify_all()

    def pending(self) -> int:
        with self._cond:
            return len(self._queued_ids)

    def close(self, timeout_s: float = 10.0) -> None:
        """Write what is queued (within ``timeout_s``), then stop the thread. Idempotent."""
        if self._thread is not None:
            self.flush(timeout_s)
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=timeout_s)
            self._thread = None
        lost = self.pending()
        if lost:
            logger.error("%d queued decisions could not be written before closing", lost)

    # --- the writer thread ----------------------------------------------------------------

    def _run(self) -> None:
        if self.yield_core:  # its batches take the core in the event loop's idle time
            lower_this_thread()
        backoff = 0.0
        batch: _Batch | None = None
        while True:
            with self._cond:
                if batch is None:
                    if not self._queue and not self._closed:
                        self._cond.wait_for(lambda: self._closed or bool(self._queue))
                    if not self._queue and self._closed:
                        return
                    if not self._urgent and len(self._queue) < self.batch:
                        # Let a few more requests join this batch (like Kafka's linger.ms).
                        self._cond.wait_for(
                            lambda: self._urgent or self._closed or len(self._queue) >= self.batch,
                            timeout=self.flush_s,
                        )
                    batch = self._take()
                    self._writing = batch.ids
                self._urgent = False
            try:
                self._write(batch)
            except Exception as exc:  # noqa: BLE001 - kept and retried; never dropped
                self.failures += 1
                if self._closed:  # closing, and the backend still fails: give up
                    logger.error("writing %d decisions failed while closing: %r",
                                 len(batch.records), exc)  # fmt: skip
                    return
                backoff = min(MAX_BACKOFF_S, max(self.flush_s, backoff * 2 or 0.05))
                logger.error("writing %d decisions failed; retrying in %.2f s: %r",
                             len(batch.records), backoff, exc)  # fmt: skip
                with self._cond:  # new decisions notify too: only closing cuts the pause
                    self._cond.wait_for(lambda: self._closed, timeout=backoff)
                continue
            backoff = 0.0
            with self._cond:
                self._queued_ids -= batch.ids
                self._writing = set()
                self.written += len(batch.records)
                self._cond.notify_all()
            batch = None

    def _take(self) -> _Batch:
        records: list[dict[str, Any]] = []
        events: dict[str, Any] = {}
        while self._queue and len(records) < self.batch:
            record, event = self._queue.popleft()
            records.append(record)
            # Decisions answering one message carry its event id (a chatbot's, e.g. Rasa
            # uttering twice for one turn): the message is logged once.
            if event is not None:
                events.setdefault(event.event_id, event)
        return _Batch(records, list(events.values()), ids={r["decision_id"] for r in records})

    def _write(self, batch: _Batch) -> None:
        if not batch.appended:
            if batch.events:  # backpressure or a backend failure raises: the batch is retried
                self.events.append_accepted(batch.events)
            batch.appended = True
        if not batch.stored:
            items = [(r["decision_id"], r["user_id"], r) for r in batch.records]
            batch.written = self.decisions.put_many(items)
            batch.stored = True
        if self.archive is not None:
            for record in batch.records[batch.archived :]:
                # Only what the store took: it refuses a decision made before its user's
                # erasure, which must not outlive the erasure in the archive either.
                if record["decision_id"] in batch.written:
                    self.archive.put("decision", record)
                batch.archived += 1
