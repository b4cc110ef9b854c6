"""The decision service: what to answer this customer, and learning from how it went.

``personalize`` predicts the intent (with fallback), reads the user's features (only with
personalization consent), ranks knowledge articles, lets the bandit pick the response variant,
renders it, keeps the decision for feedback and logs the (redacted) message event with its
predicted intent, so the user's intent features fill. ``feedback`` turns ratings, resolutions
and article clicks into one reward for the bandit (once per decision) and logs them as events.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from tailorbot.decide.context import AttributeContext, decision_context
from tailorbot.decide.experiment import Experiment
from tailorbot.decide.policy import VariantPolicy
from tailorbot.decide.recommenders import SharedRecommenders
from tailorbot.decide.refresh import PeriodicRefresh
from tailorbot.decide.responses import ResponseComposer
from tailorbot.decide.schemas import (
    ArticleOut,
    ExperimentReport,
    FallbackOut,
    FeedbackRequest,
    FeedbackResponse,
    IntentOut,
    IntentRank,
    PersonalizeRequest,
    PersonalizeResponse,
    ResponseOut,
    UserOut,
)
from tailorbot.engine import Engine
from tailorbot.errors import NotFound, PayloadTooLarge, Problem, backend_errors
from tailorbot.events.profile import consents_to_personalization
from tailorbot.models.bandit import FeedbackReward
from tailorbot.models.intent.base import IntentModel
from tailorbot.stream.features import feature_view

STATS_REFRESH_S = 1.0  # article statistics re-read period when bandit_sync_s is 0


def _now_iso() -> str:
    return datetime.now(UTC).isoformat()


class DecisionService:
    """Personalize and feedback over one engine (its log and store) and loaded models."""

    def __init__(
        self,
        engine: Engine,
        intent_model: IntentModel,
        recommenders: SharedRecommenders,
        policy: VariantPolicy,
        composer: ResponseComposer,
        model_versions: Mapping[str, str],
        attributes: AttributeContext,
        experiment: Experiment,
        control_variant: str | None = None,
        reward: FeedbackReward | None = None,
    ) -> None:
        self.engine = engine
        self.intent_model = intent_model
        self.recommenders = recommenders
        self.policy = policy
        self.composer = composer
        self.model_versions = dict(model_versions)
        self.attributes = attributes
        self.experiment = experiment
        self.control_variant = control_variant
        self.reward = reward or FeedbackReward()
        sync_s = engine.settings.bandit_sync_s
        refreshers = [recommenders.refresh] + ([policy.sync] if sync_s > 0 else [])
        self._refresh = PeriodicRefresh(refreshers, sync_s or STATS_REFRESH_S)

    def start(self) -> None:
        """Load the shared article statistics and keep them fresh in the background."""
        self._refresh.start()

    def close(self) -> None:
        self._refresh.stop()

    # --- personalize ------------------------------------------------------------------
    def personalize(self, request: PersonalizeRequest) -> PersonalizeResponse:
        self._check_length(request.message)
        started = time.perf_counter()
        timings: dict[str, float] = {}
        store = self.engine.store

        prediction = self.intent_model.predict_one(request.message)
        timings["intent"] = _ms_since(started)

        mark = time.perf_counter()
        with backend_errors():
            profile = store.get_profile(request.user_id)
            consent = consents_to_personalization(profile)
            record = store.get(request.user_id) if consent else None
        view = feature_view(record, profile, time.time()) if consent else None
        timings["features"] = _ms_since(mark)

        arm = self.experiment.arm_for(request.user_id)
        personalized = arm == "personalized"
        mark = time.perf_counter()
        fallback = prediction.fallback
        articles = []
        if fallback.reason != "out_of_scope":
            articles = self.recommenders.recommend(
                view,
                request.message,
                prediction.name,
                prediction.confidence,
                k=self.engine.settings.recommendations,
                personalized=personalized,
                tier=(profile or {}).get("tier"),
                language=request.context.language or (profile or {}).get("language"),
            )
        timings["recommend"] = _ms_since(mark)

        mark = time.perf_counter()
        context = decision_context(view, profile, self.attributes)
        template = self.composer.template_for(prediction.name, fallback.triggered)
        if personalized:
            variant, propensity = self._choose(context, self.composer.variant_names)
        else:
            variant, propensity = self._control_variant(self.composer.variant_names), 1.0
        text = self.composer.render(template, variant, view, profile, request.context, articles)
        timings["response"] = _ms_since(mark)

        decision_id = uuid.uuid4().hex
        decision = {
            "decision_id": decision_id,
            "user_id": request.user_id,
            "session_id": request.session_id,
            "channel": request.context.channel,
            "intent": prediction.name,
            "confidence": prediction.confidence,
            "fallback": fallback.reason,
            "articles": [a.article_id for a in articles],
            "template_id": template.id,
            "variant": variant,
            "propensity": propensity,
            "context": context,
            "arm": arm,
            "personalized": view is not None and personalized,
            "model_versions": self.model_versions,
            "created_at": _now_iso(),
        }
        mark = time.perf_counter()
        # The message goes to the log first: if the log refuses it (429/503) nothing is
        # stored, and the chatbot's retry starts clean.
        self.engine.ingest([self._message_event(decision_id, request, prediction)])
        with backend_errors():
            store.put_decision(decision_id, request.user_id, decision)
        self.engine.archive_decision(decision)
        timings["record"] = _ms_since(mark)
        timings["total"] = _ms_since(started)
        self.engine.metrics.decisions.labels(
            outcome="fallback" if fallback.triggered else "answered"
        ).inc()

        return PersonalizeResponse(
            decision_id=decision_id,
            intent=IntentOut(
                name=prediction.name,
                confidence=prediction.confidence,
                ranking=[IntentRank(name=n, confidence=p) for n, p in prediction.ranking],
            ),
            fallback=FallbackOut(triggered=fallback.triggered, reason=fallback.reason),
            articles=[
                ArticleOut(id=a.article_id, title=a.title, score=a.score, reasons=a.reasons)
                for a in articles
            ],
            response=ResponseOut(
                template_id=template.id, variant=variant, text=text, propensity=propensity
            ),
            user=UserOut(
                segment=view["segment"] if view is not None else None,
                consent=consent,
                personalized=view is not None and personalized,
            ),
            experiment_arm=arm,
            model_versions=self.model_versions,
            timings_ms=timings,
        )

    def _check_length(self, message: str) -> None:
        """413 before anything is predicted or stored (the message event would be refused)."""
        limit = self.engine.settings.max_text_chars
        if len(message) > limit:
            reason = f"message is {len(message)} characters; at most {limit} are accepted"
            raise PayloadTooLarge(reason, problems=[Problem(None, "message", reason)])

    def _choose(self, context: dict[str, float], variants: list[str]) -> tuple[str, float]:
        choice = self.policy.choose(context, variants)
        return choice.arm, choice.propensity

    def _control_variant(self, variants: list[str]) -> str:
        if self.control_variant in variants:
            return self.control_variant
        return variants[0]

    def experiment_report(self) -> ExperimentReport:
        with backend_errors():
            return self.experiment.report(self.engine.store)

    @staticmethod
    def _message_event(decision_id: str, request: PersonalizeRequest, prediction: Any) -> dict:
        return {
            "type": "message",
            "event_id": f"{decision_id}-message",
            "user_id": request.user_id,
            "session_id": request.session_id,
            "timestamp": _now_iso(),
            "channel": request.context.channel,
            "role": "customer",
            "text": request.message,
            "intent": prediction.name,
            "confidence": round(float(prediction.confidence), 6),
            "metadata": {"decision_id": decision_id},
        }

    # --- feedback ---------------------------------------------------------------------
    def feedback(self, request: FeedbackRequest) -> FeedbackResponse:
        store = self.engine.store
        with backend_errors():
            decision = store.get_decision(request.decision_id)
        if decision is None:
            raise NotFound(f"no decision {request.decision_id!r} (unknown, expired or erased)")
        signals = request.signals()
        helpful = _helpful_signal(request, decision.get("articles", []))
        reward = self.reward.reward(
            rating=request.rating, resolved=request.resolved, helpful=helpful
        )
        if decision.get("feedback") is not None:
            return FeedbackResponse(decision_id=request.decision_id, applied=False, reward=None)
        # Events first: their ids derive from the decision, so a retry after a refused append
        # (429/503) re-sends the same events, which the stream processor counts once.
        events = _feedback_events(request, decision)
        if events:
            self.engine.ingest(events)
        with backend_errors():
            first = store.record_feedback(request.decision_id, {**signals, "reward": reward})
        if not first:
            return FeedbackResponse(decision_id=request.decision_id, applied=False, reward=None)
        arm = decision.get("arm", "personalized")
        with backend_errors():
            self.experiment.record(
                store, arm, rating=request.rating, resolved=request.resolved, reward=reward
            )
            if reward is not None and arm == "personalized":
                self.policy.learn(decision.get("context", {}), decision["variant"], reward)
        self.engine.archive_feedback(
            {
                "decision_id": request.decision_id,
                "user_id": decision["user_id"],
                **signals,
                "reward": reward,
                "created_at": _now_iso(),
            }
        )
        return FeedbackResponse(decision_id=request.decision_id, applied=True, reward=reward)


def _helpful_signal(request: FeedbackRequest, offered: list[str]) -> bool | None:
    if request.helpful_article_id is not None:
        return True
    if request.unhelpful_article_id is not None:
        return False
    if request.clicked_article_id in offered:
        return True  # a click on an offered article; a click elsewhere says nothing of ours
    return None


def _feedback_events(request: FeedbackRequest, decision: Mapping[str, Any]) -> list[dict]:
    base = {
        "user_id": decision["user_id"],
        "session_id": decision["session_id"],
        "timestamp": _now_iso(),
        "channel": decision.get("channel", "chat"),
        "metadata": {"decision_id": request.decision_id},
    }
    prefix = request.decision_id
    events: list[dict] = []
    if request.clicked_article_id is not None:
        events.append(
            {
                **base,
                "type": "article_viewed",
                "event_id": f"{prefix}-click",
                "article_id": request.clicked_article_id,
            }
        )
    if request.helpful_article_id is not None:
        events.append(
            {
                **base,
                "type": "article_feedback",
                "event_id": f"{prefix}-helpful",
                "article_id": request.helpful_article_id,
                "helpful": True,
            }
        )
    if request.unhelpful_article_id is not None:
        events.append(
            {
                **base,
                "type": "article_feedback",
                "event_id": f"{prefix}-unhelpful",
                "article_id": request.unhelpful_article_id,
                "helpful": False,
            }
        )
    if request.rating is not None:
        events.append(
            {**base, "type": "rating", "event_id": f"{prefix}-rating", "score": request.rating}
        )
    if request.resolved is not None:
        article = request.helpful_article_id or request.clicked_article_id
        events.append(
            {
                **base,
                "type": "resolution",
                "event_id": f"{prefix}-resolution",
                "resolved": request.resolved,
                "article_id": article if request.resolved else None,
            }
        )
    return events


def _ms_since(start: float) -> float:
    return round((time.perf_counter() - start) * 1000, 3)
