"""Feedback: the reward of a decision, its events, and what the bandits and the experiment
learn from it, exactly once.

The decision's feedback mark and the counters it adds (experiment outcomes, the statistics of
the bandit of its arm) are one atomic write, so a retry or a concurrent duplicate changes
nothing; the feedback events go to the log first, with ids derived from the decision.

:meth:`FeedbackHandler.apply_many` applies many feedbacks with one log append and one
store write (the feedback batcher's batches, feedback_batcher.py); :meth:`~FeedbackHandler.apply`
is a batch of one.
"""

from __future__ import annotations

import contextvars
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from tailorbot.config import Settings
from tailorbot.errors import (
    RETRY_AFTER_S,
    InvalidInput,
    NotFound,
    Unavailable,
    backend_errors,
    own_copies,
    own_copy,
    unavailable,
)
from tailorbot.events.codec import now_iso
from tailorbot.features.context import non_personal
from tailorbot.features.memory import PERSONALIZED_ARM
from tailorbot.metrics import Metrics
from tailorbot.models.bandit import FeedbackReward
from tailorbot.services.decisions.experiment import Experiment
from tailorbot.services.decisions.feedback import (
    feedback_events,
    has_mark,
    helpful_signal,
    not_applied,
    offered_articles,
    unknown_articles,
)
from tailorbot.services.decisions.policy import VariantPolicy
from tailorbot.services.decisions.recorder import DecisionRecorder
from tailorbot.services.decisions.schemas import FeedbackRequest, FeedbackResponse
from tailorbot.services.ports import EventDoor, RecordArchive
from tailorbot.store.base import FeedbackMark, StoreError, Stores, check_finite, packed_vectors

if TYPE_CHECKING:
    import numpy as np

    from tailorbot.services.decisions.live_models import DecisionModels


ONCE_SIGNALS = ("rating", "resolved")  # one per decision: the first one logged counts
logger = logging.getLogger(__name__)

LATER_SIGNAL_ATTEMPTS = 3  # compare-and-set rounds against racing later signals
T = TypeVar("T")


class DecisionNotWritten(NotFound):
    """A batch of feedback met a decision not in the store (yet): another process may still
    be writing it. Applied alone (:meth:`FeedbackHandler.apply`), the feedback waits for it
    up to ``decision_wait_s``; a batch does not hold the others up for that."""


@dataclass(slots=True)
class _Prepared:
    """One feedback of a batch, read and checked, its events accepted; ``mark``: the write
    of its outcome (None: it has none, its events are all it logs)."""

    request: FeedbackRequest
    decision: dict[str, Any]
    events: list[Any]
    mark: FeedbackMark | None = None
    reward: float | None = None
    learned: tuple[VariantPolicy, Mapping[str, float], str, float] | None = None
    later: dict[str, Any] | None = None  # a later signal's new rating / resolution


class FeedbackHandler:
    """``models`` returns the decision service's current models (they are swapped live)."""

    def __init__(
        self,
        models: Callable[[], DecisionModels],
        events: EventDoor,
        recorder: DecisionRecorder,
        stores: Stores,
        settings: Settings,
        experiment: Experiment,
        metrics: Metrics,
        archive: RecordArchive | None,
        reward: FeedbackReward,
    ) -> None:
        self.models = models
        self.events = events
        self.recorder = recorder
        self.stores = stores
        self.settings = settings
        self.experiment = experiment
        self.metrics = metrics
        self.archive = archive
        self.reward = reward

    def apply(self, request: FeedbackRequest) -> FeedbackResponse:
        """One feedback, alone (it waits for a decision another process is writing)."""
        outcome = self.apply_many([request], wait=True)[0]
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    def apply_many(
        self,
        requests: Sequence[FeedbackRequest],
        wait: bool = False,
        contexts: Sequence[contextvars.Context] | None = None,
    ) -> list[FeedbackResponse | Exception]:
        """Each feedback's answer or error, in order: their events in one append, then their
        outcomes in one store write (:meth:`DecisionStore.record_feedbacks`), each still
        exactly once. Without ``wait``, a decision not in the store is
        :class:`DecisionNotWritten` at once. ``contexts``: each request's context (its
        trace, its request id), in which its own steps run."""
        received_at = now_iso()  # before the reads: see feedback_events
        runs: list[Callable[..., Any]]
        runs = [c.run for c in contexts] if contexts is not None else [_call] * len(requests)
        unwritten = self._unwritten([request.decision_id for request in requests])
        try:
            read = self._read([r.decision_id for r in requests if r.decision_id not in unwritten])
        except Exception as exc:  # noqa: BLE001 - the answer of every feedback of the batch
            failed: list[FeedbackResponse | Exception] = [*own_copies(exc, len(requests))]
            return failed
        answers: list[FeedbackResponse | Exception] = []
        prepared: list[tuple[int, _Prepared]] = []
        for i, (run, request) in enumerate(zip(runs, requests, strict=True)):
            try:
                if request.decision_id in unwritten:
                    # Still queued here: the store is refusing the recorder's writes. The
                    # decision exists, so a 503 to retry, never the 404 a client would take
                    # as final.
                    raise Unavailable(
                        "the decision store is not taking writes; retry shortly",
                        retry_after=RETRY_AFTER_S,
                    )
                decision = read.get(request.decision_id)
                step = run(self._prepare, request, decision, received_at, wait)
            except Exception as exc:  # noqa: BLE001 - this feedback's answer
                step = exc
            if isinstance(step, _Prepared):
                prepared.append((i, step))
                step = not_applied(request)  # until its batch is written
            answers.append(step)
        try:
            marked = self._write([item for _, item in prepared])
        except Exception as exc:  # noqa: BLE001 - the answer of every feedback it held
            for (i, _), error in zip(prepared, own_copies(exc, len(prepared)), strict=True):
                answers[i] = error
            return answers
        for (i, item), taken in zip(prepared, marked, strict=True):
            if isinstance(taken, Exception):  # its mark failed, others of the batch landed
                answers[i] = taken
                continue
            try:
                answers[i] = runs[i](self._finish, item, taken, received_at)
            except Exception as exc:  # noqa: BLE001 - this feedback's answer
                answers[i] = exc
        return answers

    def _prepare(
        self,
        request: FeedbackRequest,
        decision: dict[str, Any] | None,
        received_at: str,
        wait: bool,
    ) -> _Prepared | FeedbackResponse:
        """The feedback checked against its decision (as the batch read it; None: not
        stored); its events accepted and what it would write, or its answer already (a
        later signal of a decision that has its outcome)."""
        if decision is None:
            decision = self._late_decision(request.decision_id, wait)
        if decision is None or decision.get("pointer"):  # a chatbot's pointer: no decision
            raise NotFound(f"no decision {request.decision_id!r} (unknown, expired or erased)")
        offered = offered_articles(decision)
        problems = unknown_articles(request, offered, self.models().composer.kb)
        if problems:
            raise InvalidInput("unknown article in the feedback", problems=problems)
        if decision.get("feedback") is not None:
            later = self._later(request, decision, received_at)
            return later if later is not None else not_applied(request)
        helpful = helpful_signal(request, offered)
        reward = self.reward.reward(
            rating=request.rating, resolved=request.resolved, helpful=helpful
        )
        # Events first (see _write): their ids derive from the decision, so a retry after a
        # refused append (429/503) re-sends the same events, which the stream processor
        # counts once.
        events = [
            self.events.accept(event, offered)
            for event in feedback_events(request, decision, received_at)
        ]
        if request.rating is None and request.resolved is None and helpful is None:
            # No outcome (a click on an article the decision did not offer): its event is
            # logged, and the decision's one feedback stays for the outcome still to come.
            return _Prepared(request, decision, events)
        increments, vectors, learned = self._learning(decision, request, reward)
        for deltas in increments.values():  # refused here: not in the store, for its batch
            check_finite(deltas)
        for vector_deltas in vectors.values():
            packed_vectors(vector_deltas)
        feedback = {**request.signals(), "reward": reward}
        mark = FeedbackMark(request.decision_id, feedback, increments, None, vectors)
        return _Prepared(request, decision, events, mark, reward, learned)

    def _write(self, batch: Sequence[_Prepared]) -> list[bool | Exception]:
        """The batch's events, then its marks with what they teach (each mark and its
        counters one atomic write: exactly once); whether each mark was taken, or the
        error of one that was not written when others were."""
        events = [event for item in batch for event in item.events]
        if events:
            self.events.append_accepted(events)
        marks = [item.mark for item in batch if item.mark is not None]
        written: Sequence[bool | Exception]
        with backend_errors():
            try:
                written = self.stores.decisions.record_feedbacks(marks) if marks else []
            except StoreError as exc:
                written = self._landed(marks, exc)
        taken = iter(written)
        return [next(taken) if item.mark is not None else False for item in batch]

    def _landed(self, marks: list[FeedbackMark], error: StoreError) -> list[bool | Exception]:
        """After a failed write of ``marks``: those found stored as written (the write may
        have landed before its answer was lost, and a Redis script that fails midway keeps
        what it wrote) are taken, so that what they taught is counted here too; the others
        get the error (a 503 to retry). ``error`` again when even the read fails."""
        try:
            stored = self.stores.decisions.get_many([mark.decision_id for mark in marks])
        except StoreError:
            raise error from None
        landed = [has_mark(stored, mark) for mark in marks]
        if not any(landed):
            raise error
        logger.warning("%s unavailable: %s (%d of %d marks written)", error.what, error,
                       sum(landed), len(marks))  # fmt: skip
        failed = unavailable(error)
        return [True if done else own_copy(failed) for done in landed]

    def _finish(self, item: _Prepared, taken: bool, received_at: str) -> FeedbackResponse:
        """After the batch's write: what this feedback's taken mark teaches, or its signals as
        later ones when another feedback took the outcome since the read (a rating racing a
        click still counts in the readout)."""
        request, decision, mark = item.request, item.decision, item.mark
        if mark is None:
            return not_applied(request)
        with backend_errors():
            if not taken:
                fresh = self.stores.decisions.get(request.decision_id)
                if fresh is not None:
                    self._later_signals(request, fresh, received_at)
                return not_applied(request)
            if item.later is not None:
                self._count_later(item)
                return not_applied(request)
            if item.learned is not None:
                policy, context, variant, learned_reward = item.learned
                policy.learn_locally(context, variant, learned_reward)
            self.metrics.observe_feedback(
                decision.get("arm", PERSONALIZED_ARM), request.rating, request.resolved
            )
            self._archive(request.decision_id, decision["user_id"], mark.feedback)
        return FeedbackResponse(decision_id=request.decision_id, applied=True, reward=item.reward)

    def _archive(self, decision_id: str, user_id: str, feedback: Mapping[str, Any]) -> None:
        """The decision's feedback mark to the archive (a later one extends its row)."""
        if self.archive is not None:
            record = {"decision_id": decision_id, "user_id": user_id, **feedback}
            self.archive.put("feedback", {**record, "created_at": now_iso()})

    def _later(
        self, request: FeedbackRequest, decision: Mapping[str, Any], received_at: str
    ) -> _Prepared | None:
        """A feedback after the decision's outcome, as a batch item (None: it adds nothing).
        Its reward and what was learned stay. A signal of a kind the decision did not have
        yet (a rating after a click) is logged, for the figures read from the log, and
        counted once in its experiment's readout (a decision's CSAT is its rating whichever
        signal came first); a repeated one is not (articles: ids per article). Its mark
        extends the decision's by compare-and-set, so racing ones count once."""
        recorded = decision.get("feedback") or {}
        later = request.model_copy(update={k: None for k in ONCE_SIGNALS if k in recorded})
        if not later.signals():
            return None
        offered = offered_articles(decision)
        events = [
            self.events.accept(event, offered)
            for event in feedback_events(later, decision, received_at)
        ]
        new = {k: getattr(later, k) for k in ONCE_SIGNALS if getattr(later, k) is not None}
        if not new:
            return _Prepared(request, dict(decision), events)
        increments = {}
        if self.experiment.counts(decision):
            increments[self.experiment.namespace] = self.experiment.outcome_deltas(
                decision.get("arm", PERSONALIZED_ARM),
                decision["user_id"],
                rating=new.get("rating"),
                resolved=new.get("resolved"),
                reward=None,
                first=False,
            )
        mark = FeedbackMark(request.decision_id, {**recorded, **new}, increments, recorded)
        return _Prepared(request, dict(decision), events, mark, later=new)

    def _later_signals(
        self, request: FeedbackRequest, decision: Mapping[str, Any], received_at: str
    ) -> None:
        """:meth:`_later` written at once, for a feedback that lost its batch's race for the
        mark: read again and retried while another signal extends the mark meanwhile."""
        current: Mapping[str, Any] | None = decision
        for _ in range(LATER_SIGNAL_ATTEMPTS):
            item = self._later(request, current, received_at) if current is not None else None
            if item is None:  # nothing to add, or erased meanwhile
                return
            if item.events:
                self.events.append_accepted(item.events)
            if item.mark is None:
                return
            with backend_errors():
                if self.stores.decisions.record_feedback(*item.mark):
                    self._count_later(item)
                    return
                current = self.stores.decisions.get(request.decision_id)

    def _count_later(self, item: _Prepared) -> None:
        """A later signal's taken mark: its metrics and its archived row (extended)."""
        new, decision = item.later or {}, item.decision
        arm = decision.get("arm", PERSONALIZED_ARM)
        self.metrics.observe_feedback(arm, new.get("rating"), new.get("resolved"))
        if item.mark is not None:
            self._archive(item.request.decision_id, decision["user_id"], item.mark.feedback)

    def _unwritten(self, decision_ids: Sequence[str]) -> set[str]:
        """Those of ``decision_ids`` still queued in this process's recorder after a flush
        (the first one queued flushes the queue), waited for together: a batch waits no
        longer than one feedback would."""
        deadline = time.monotonic() + max(self.settings.decision_wait_s, 1.0)
        return {
            d
            for d in decision_ids
            if not self.recorder.wait_written(d, timeout_s=max(deadline - time.monotonic(), 0))
        }

    def _read(self, decision_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """The stored decisions of ``decision_ids``, in one read."""
        with backend_errors():
            return self.stores.decisions.get_many(decision_ids)

    def _late_decision(self, decision_id: str, wait: bool) -> dict[str, Any] | None:
        """A decision the read did not find: one another process made may still be on its
        way (``decision_wait_s``; without ``wait``, that is :class:`DecisionNotWritten` at
        once); None when it did not come."""
        wait_s = self.settings.decision_wait_s
        if wait_s <= 0:
            return None
        if not wait:
            raise DecisionNotWritten(f"decision {decision_id!r} is not written yet")
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            time.sleep(0.01)  # a bounded wait for another process's batch, not a fixed delay
            with backend_errors():
                decision = self.stores.decisions.get(decision_id)
            if decision is not None:
                return decision
        return None

    def _learning(
        self, decision: Mapping[str, Any], request: FeedbackRequest, reward: Any
    ) -> tuple[
        dict[str, dict[str, float]],
        dict[str, dict[str, np.ndarray]],
        tuple[VariantPolicy, Mapping[str, float], str, float] | None,
    ]:
        """The counter increments of this feedback (experiment outcomes), its vector
        increments (the statistics of the bandit of its arm) and what that bandit then
        learns locally."""
        arm = decision.get("arm", PERSONALIZED_ARM)
        experiment = self.experiment
        increments: dict[str, dict[str, float]] = {}
        if experiment.counts(decision):
            increments[experiment.namespace] = experiment.outcome_deltas(
                arm,
                decision["user_id"],
                rating=request.rating,
                resolved=request.resolved,
                reward=reward,
            )
        if reward is None:
            return increments, {}, None
        models = self.models()
        policy: VariantPolicy | None = models.policy
        context: Mapping[str, float] = decision.get("context", {})
        if arm != PERSONALIZED_ARM:  # the control learns from its own users only
            policy, context = models.control, non_personal(context)
        if policy is None:  # a fixed control variant learns nothing
            return increments, {}, None
        variant = decision["variant"]
        vectors = {policy.namespace: policy.statistics_delta(context, variant, reward)}
        return increments, vectors, (policy, context, variant, reward)


def _call(func: Callable[..., T], *args: Any) -> T:
    return func(*args)
