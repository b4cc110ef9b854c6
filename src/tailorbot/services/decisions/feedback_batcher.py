"""Feedback applied in batches, from one thread.

``POST /v1/feedback`` used to apply each feedback on a thread of its own: a decision read, a
log append and a store write, each a transaction, and around each of them the thread and
the event loop passed the interpreter lock back and forth. At a few hundred feedbacks a
second beside the decisions that was more CPU than their work (docs/benchmarks.md). Here
the event loop hands each feedback to one thread, which applies all that are waiting at
once (:meth:`FeedbackHandler.apply_many`): one append for their events, one write for their
marks, each mark still taken exactly once. A batch costs less per feedback the larger it is
(0.39-0.45 as much at 16 as alone), so while feedback comes together (the last batch held
more than one, another came while it was applied, or more than one waits) the thread waits
up to ``linger_s`` from the oldest waiting feedback for others to join it, as the decision
recorder waits ``record_flush_s``: those feedbacks answer up to that much later. A caller
that sends one feedback at a time, waiting for each answer, never waits for a linger:
nothing could join its batch.

Nothing is answered before its batch is written, so a crash loses no feedback that was
answered. The queue is bounded (``max_pending``): past it, :meth:`FeedbackBatcher.submit`
refuses with 503. A feedback whose caller gave up before its batch began is not applied.

>>> batcher = FeedbackBatcher(lambda requests, contexts: [r * 2 for r in requests])
>>> batcher.start()
>>> [f.result(timeout=5) for f in [batcher.submit(1), batcher.submit(20)]]
[2, 40]
>>> batcher.close()
"""

from __future__ import annotations

import contextvars
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Any

from tailorbot.errors import RETRY_AFTER_S, Unavailable, own_copies

logger = logging.getLogger(__name__)

MAX_BATCH = 64  # the most feedbacks one batch applies
MAX_PENDING = 10_000  # feedbacks waiting before submit refuses

ApplyMany = Callable[[Sequence[Any], Sequence[contextvars.Context]], Sequence[Any]]


class FeedbackBatcher:
    """Applies what :meth:`submit` is given with ``apply_many(requests, contexts)`` (each
    request's answer, or an exception for it to raise, in order) from a daemon thread, all
    that is waiting at once, at most ``max_batch``; ``contexts``: each submitter's context
    (its trace, its request id). ``observe`` is given each batch's size (a metric)."""

    def __init__(
        self,
        apply_many: ApplyMany,
        linger_s: float = 0.0,
        max_batch: int = MAX_BATCH,
        max_pending: int = MAX_PENDING,
        observe: Callable[[int], None] | None = None,
    ) -> None:
        if max_batch < 1 or max_pending < 1 or linger_s < 0:
            raise ValueError("max_batch and max_pending must be at least 1, linger_s >= 0")
        self.apply_many = apply_many
        self.linger_s = linger_s
        self.max_batch = max_batch
        self.max_pending = max_pending
        self.observe = observe
        # (request, its context, its future, when it came)
        self._queue: deque[tuple[Any, contextvars.Context, Future[Any], float]] = deque()
        self._cond = threading.Condition()
        self._closed = False
        self._together = False  # the last batch held more than one, or one came meanwhile
        self._thread: threading.Thread | None = None
        self.batches = 0  # batches taken (with `handled`: their mean size)
        self.handled = 0

    def start(self) -> None:
        with self._cond:
            if self._thread is None and not self._closed:
                self._thread = threading.Thread(
                    target=self._run, name="tailorbot-feedback", daemon=True
                )
                self._thread.start()

    def submit(self, request: Any) -> Future[Any]:
        """The future of ``request``'s answer; 503 when the queue is full or closed."""
        future: Future[Any] = Future()
        with self._cond:
            if self._closed or self._thread is None or not self._thread.is_alive():
                raise Unavailable("the feedback writer is stopped", retry_after=RETRY_AFTER_S)
            if len(self._queue) >= self.max_pending:
                raise Unavailable(
                    f"{len(self._queue)} feedbacks are waiting to be applied; retry shortly",
                    retry_after=RETRY_AFTER_S,
                )
            self._queue.append((request, contextvars.copy_context(), future, time.monotonic()))
            if len(self._queue) in (1, self.max_batch):  # a batch to start, or one to take
                self._cond.notify()
        return future

    def close(self, timeout_s: float = 10.0) -> None:
        """Apply what is queued (within ``timeout_s``), then stop; what is left then is
        answered 503. Idempotent."""
        with self._cond:
            self._closed = True
            self._cond.notify()
            thread = self._thread
        if thread is not None:
            thread.join(timeout_s)
        self._refuse_waiting("tailorbot is shutting down")

    def _run(self) -> None:
        try:
            self._batches()
        finally:  # closed, or the thread dies: nothing may wait for it forever
            self._refuse_waiting("the feedback writer stopped")

    def _refuse_waiting(self, why: str) -> None:
        """Close, and answer what is still queued with 503."""
        with self._cond:
            self._closed = True
            left, self._queue = list(self._queue), deque()
        for _, _, future, _ in left:
            if future.set_running_or_notify_cancel():
                future.set_exception(Unavailable(why, retry_after=RETRY_AFTER_S))

    def _batches(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._closed:
                    self._cond.wait()
                if not self._queue:
                    return  # closed, and all applied
                # Others may join the oldest one until its linger is up (not when closing),
                # while feedback comes together: one alone, after a batch of one during
                # which none came, has no one to wait for (a caller sending one at a time).
                due = self._queue[0][3] + self.linger_s
                together = self._together or len(self._queue) > 1
                while together and len(self._queue) < self.max_batch and not self._closed:
                    left_s = due - time.monotonic()
                    if left_s <= 0:
                        break
                    self._cond.wait(left_s)
                size = min(len(self._queue), self.max_batch)
                taken = [self._queue.popleft() for _ in range(size)]
            # One whose caller gave up (its request cancelled) is dropped; the rest can no
            # longer be cancelled, so each gets its answer.
            batch = [item[:3] for item in taken if item[2].set_running_or_notify_cancel()]
            if batch:
                self._apply(batch)

    def _apply(self, batch: list[tuple[Any, contextvars.Context, Future[Any]]]) -> None:
        self.batches += 1
        self.handled += len(batch)
        if self.observe is not None:
            self.observe(len(batch))
        try:
            outcomes = list(self.apply_many([r for r, _, _ in batch], [c for _, c, _ in batch]))
            if len(outcomes) != len(batch):
                raise RuntimeError(f"{len(outcomes)} answers for {len(batch)} feedbacks")
        except Exception as exc:  # noqa: BLE001 - a bug: each feedback of the batch raises it
            logger.exception("a batch of %d feedbacks failed", len(batch))
            for (_, _, future), error in zip(batch, own_copies(exc, len(batch)), strict=True):
                future.set_exception(error)
            return
        except BaseException:  # SystemExit and the like end the thread; never in a request
            for _, _, future in batch:
                future.set_exception(
                    Unavailable("the feedback writer stopped", retry_after=RETRY_AFTER_S)
                )
            raise
        with self._cond:  # before the answers: a caller waiting for its answer sends no more
            self._together = len(batch) > 1 or bool(self._queue)
        for (_, _, future), outcome in zip(batch, outcomes, strict=True):
            if isinstance(outcome, BaseException):
                future.set_exception(outcome)
            else:
                future.set_result(outcome)
