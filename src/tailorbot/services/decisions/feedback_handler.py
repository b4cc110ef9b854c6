"""Feedback: the reward of a decision, its events, and what the bandits and the experiment
learn from it, exactly once.

The decision's feedback mark and the counters it adds (experiment outcomes, the statistics of
the bandit of its arm) are one atomic write, so a retry or a concurrent duplicate changes
nothing; the feedback events go to the log first, with ids derived from the decision.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Mapping
from typing import TYPE_CHECKING, Any

from tailorbot.config import Settings
from tailorbot.errors import (
    RETRY_AFTER_S,
    InvalidInput,
    NotFound,
    Problem,
    Unavailable,
    backend_errors,
)
from tailorbot.events.codec import now_iso
from tailorbot.features.context import non_personal
from tailorbot.features.memory import PERSONALIZED_ARM
from tailorbot.metrics import Metrics
from tailorbot.models.bandit import FeedbackReward
from tailorbot.services.decisions.experiment import Experiment
from tailorbot.services.decisions.feedback import (
    feedback_events,
    helpful_signal,
    offered_articles,
)
from tailorbot.services.decisions.policy import VariantPolicy
from tailorbot.services.decisions.recorder import DecisionRecorder
from tailorbot.services.decisions.schemas import FeedbackRequest, FeedbackResponse
from tailorbot.services.ports import EventSink, RecordArchive
from tailorbot.store.base import Stores

if TYPE_CHECKING:
    from tailorbot.services.decisions.live_models import DecisionModels


ONCE_SIGNALS = ("rating", "resolved")  # one per decision: the first one logged counts
LATER_SIGNAL_ATTEMPTS = 3  # compare-and-set rounds against racing later signals


class FeedbackHandler:
    """``models`` returns the decision service's current models (they are swapped live)."""

    def __init__(
        self,
        models: Callable[[], DecisionModels],
        events: EventSink,
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
        decisions = self.stores.decisions
        received_at = now_iso()  # before the read: see feedback_events
        decision = self._written_decision(request.decision_id)
        if decision is None or decision.get("pointer"):  # a chatbot's pointer: no decision
            raise NotFound(f"no decision {request.decision_id!r} (unknown, expired or erased)")
        not_applied = FeedbackResponse(decision_id=request.decision_id, applied=False, reward=None)
        offered = offered_articles(decision)
        self._check_articles(request, offered)
        if decision.get("feedback") is not None:
            self._later_signals(request, decision, received_at)
            return not_applied
        signals = request.signals()
        helpful = helpful_signal(request, offered)
        reward = self.reward.reward(
            rating=request.rating, resolved=request.resolved, helpful=helpful
        )
        # Events first: their ids derive from the decision, so a retry after a refused append
        # (429/503) re-sends the same events, which the stream processor counts once.
        events = feedback_events(request, decision, received_at)
        if events:
            self.events.ingest(events, offered=offered)
        if request.rating is None and request.resolved is None and helpful is None:
            # No outcome (a click on an article the decision did not offer): its event is
            # logged, and the decision's one feedback stays for the outcome still to come.
            return not_applied
        increments, learned = self._learning(decision, request, reward)
        with backend_errors():
            # The mark and what is learned from it in one atomic write: exactly once.
            feedback = {**signals, "reward": reward}
            if not decisions.record_feedback(request.decision_id, feedback, increments):
                # Another feedback took the outcome since the read: this one's signals are
                # later ones now (a rating racing a click still counts in the readout).
                fresh = decisions.get(request.decision_id)
                if fresh is not None:
                    self._later_signals(request, fresh, received_at)
                return not_applied
            if learned is not None:
                policy, context, variant, learned_reward = learned
                policy.learn_locally(context, variant, learned_reward)
            self.metrics.observe_feedback(
                decision.get("arm", PERSONALIZED_ARM), request.rating, request.resolved
            )
            self._archive(request.decision_id, decision["user_id"], feedback)
        return FeedbackResponse(decision_id=request.decision_id, applied=True, reward=reward)

    def _archive(self, decision_id: str, user_id: str, feedback: Mapping[str, Any]) -> None:
        """The decision's feedback mark to the archive (a later one extends its row)."""
        if self.archive is not None:
            record = {"decision_id": decision_id, "user_id": user_id, **feedback}
            self.archive.put("feedback", {**record, "created_at": now_iso()})

    def _later_signals(
        self, request: FeedbackRequest, decision: Mapping[str, Any], received_at: str
    ) -> None:
        """After the decision's outcome: its reward and what was learned stay. A signal of a
        kind it did not have yet (a rating after a click) is logged, for the figures read
        from the log, and counted once in its experiment's readout (a decision's CSAT is its
        rating whichever signal came first); a repeated one is not (articles: ids per
        article). The mark is extended by compare-and-set, so racing ones count once."""
        current: Mapping[str, Any] | None = decision
        for _ in range(LATER_SIGNAL_ATTEMPTS):
            if current is None:  # erased meanwhile
                return
            recorded = current.get("feedback") or {}
            later = request.model_copy(update={k: None for k in ONCE_SIGNALS if k in recorded})
            if not later.signals():
                return
            events = feedback_events(later, current, received_at)
            if events:
                self.events.ingest(events, offered=offered_articles(current))
            new = {k: getattr(later, k) for k in ONCE_SIGNALS if getattr(later, k) is not None}
            if not new:
                return
            arm = current.get("arm", PERSONALIZED_ARM)
            increments = {}
            if self.experiment.counts(current):
                increments[self.experiment.namespace] = self.experiment.outcome_deltas(
                    arm,
                    current["user_id"],
                    rating=new.get("rating"),
                    resolved=new.get("resolved"),
                    reward=None,
                    first=False,
                )
            with backend_errors():
                extended = {**recorded, **new}
                if self.stores.decisions.record_feedback(
                    request.decision_id, extended, increments, previous=recorded
                ):
                    self.metrics.observe_feedback(arm, new.get("rating"), new.get("resolved"))
                    self._archive(request.decision_id, current["user_id"], extended)
                    return
                # Another signal extended the mark meanwhile: read it again, count what is new.
                current = self.stores.decisions.get(request.decision_id)

    def _check_articles(self, request: FeedbackRequest, offered: Collection[str]) -> None:
        """422 for an article id the knowledge base does not have (it would become a key of
        the shared counters), unless the decision offered it: an article deleted since is
        still what the customer was shown, and already a key."""
        kb = self.models().composer.kb
        problems = [
            Problem(None, name, f"unknown article {value!r}: not in the knowledge base")
            for name in ("helpful_article_id", "unhelpful_article_id", "clicked_article_id")
            if (value := getattr(request, name)) is not None
            and value not in offered
            and kb.article(value) is None
        ]
        if problems:
            raise InvalidInput("unknown article in the feedback", problems=problems)

    def _written_decision(self, decision_id: str) -> dict[str, Any] | None:
        """The stored decision; one queued here is written first, and one another process
        made may still be on its way (``decision_wait_s``)."""
        wait_s = self.settings.decision_wait_s
        if not self.recorder.wait_written(decision_id, timeout_s=max(wait_s, 1.0)):
            # Still queued here: the store is refusing the recorder's writes. The decision
            # exists, so a 503 to retry, never the 404 a client would take as final.
            raise Unavailable(
                "the decision store is not taking writes; retry shortly",
                retry_after=RETRY_AFTER_S,
            )
        deadline = time.monotonic() + wait_s
        while True:
            with backend_errors():
                decision = self.stores.decisions.get(decision_id)
            if decision is not None or time.monotonic() >= deadline:
                return decision
            time.sleep(0.01)  # a bounded wait for another process's batch, not a fixed delay

    def _learning(
        self, decision: Mapping[str, Any], request: FeedbackRequest, reward: Any
    ) -> tuple[
        dict[str, dict[str, float]],
        tuple[VariantPolicy, Mapping[str, float], str, float] | None,
    ]:
        """The counter increments of this feedback (experiment outcomes; the statistics of
        the bandit of its arm) and what that bandit then learns locally."""
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
            return increments, None
        models = self.models()
        policy: VariantPolicy | None = models.policy
        context: Mapping[str, float] = decision.get("context", {})
        if arm != PERSONALIZED_ARM:  # the control learns from its own users only
            policy, context = models.control, non_personal(context)
        if policy is None:  # a fixed control variant learns nothing
            return increments, None
        variant = decision["variant"]
        increments[policy.namespace] = policy.statistics_delta(context, variant, reward)
        return increments, (policy, context, variant, reward)
