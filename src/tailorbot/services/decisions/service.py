"""The decision service: what to answer this customer, and learning from how it went.

``personalize`` predicts the intent (with fallback), reads the user's features (only with
personalization consent), ranks knowledge articles, lets the bandit pick the response variant,
renders it, keeps the decision for feedback and logs the (redacted) message event with its
predicted intent, so the user's intent features fill. ``feedback`` turns ratings, resolutions
and article clicks into one reward for the bandit (once per decision) and logs them as events.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from concurrent.futures import Future
from typing import Any, NamedTuple

from tailorbot.config import Settings
from tailorbot.errors import backend_errors
from tailorbot.events.codec import now_iso
from tailorbot.events.profile import consents_to_personalization
from tailorbot.features.context import decision_context, non_personal
from tailorbot.features.memory import PERSONALIZED_ARM
from tailorbot.features.view import feature_view
from tailorbot.kb.model import NO_ARTICLE_INTENTS, KnowledgeBase, ResponseTemplate
from tailorbot.metrics import Metrics
from tailorbot.models.bandit import FeedbackReward
from tailorbot.models.intent.base import OUT_OF_SCOPE_REASONS
from tailorbot.services.decisions.conversation import ConversationRules, Turn
from tailorbot.services.decisions.experiment import Experiment
from tailorbot.services.decisions.feedback_batcher import FeedbackBatcher
from tailorbot.services.decisions.feedback_handler import FeedbackHandler
from tailorbot.services.decisions.live_models import DecisionModels, LiveModels
from tailorbot.services.decisions.recorder import DecisionRecorder
from tailorbot.services.decisions.records import (
    checked_message,
    cited,
    decision_record,
    message_event,
    personalize_payload,
)
from tailorbot.services.decisions.schemas import (
    ExperimentReport,
    FeedbackRequest,
    FeedbackResponse,
    PersonalizeRequest,
    PersonalizeResponse,
    check_text_length,
)
from tailorbot.services.ports import EventDoor, RecordArchive
from tailorbot.store.base import FeatureRecord, Stores

NO_ARTICLE_REASONS = (*OUT_OF_SCOPE_REASONS, "unsupported_language", "human_handoff")


class UserRead(NamedTuple):
    """A decision's user, read before the decision (:meth:`DecisionService.read_user_ahead`)."""

    received_at: str  # when the read began: the message event's time
    profile: dict[str, Any] | None
    record: FeatureRecord | None
    read_s: float  # how long the read took, in seconds: counted in the answer's timings


class DecisionService:
    """Personalize and feedback.

    ``events`` receives the feedback events (the ingestion service fits); ``recorder``
    writes the decisions and their message events in batches, off the request path;
    ``stores`` holds profiles, feature records, decisions and the shared counters;
    ``archive`` (optional) queues feedback records for training data.
    """

    def __init__(
        self,
        models: DecisionModels,
        events: EventDoor,
        recorder: DecisionRecorder,
        stores: Stores,
        settings: Settings,
        experiment: Experiment,
        metrics: Metrics | None = None,
        archive: RecordArchive | None = None,
        reward: FeedbackReward | None = None,
    ) -> None:
        self.events = events
        self.recorder = recorder
        self.stores = stores
        self.settings = settings
        # read for every decision: out of the (frozen) settings once, as plain attributes
        self._max_text_chars = settings.max_text_chars
        self._recommendations = settings.recommendations
        self.experiment = experiment
        self.metrics = metrics if metrics is not None else Metrics()
        self.archive = archive
        self.reward = reward or FeedbackReward()
        self.conversation = ConversationRules()
        self._feedback = FeedbackHandler(
            lambda: self.models, events, recorder, stores, settings, experiment,
            self.metrics, archive, self.reward,
        )  # fmt: skip
        handler = self._feedback
        self._feedback_batches = FeedbackBatcher(
            lambda requests, contexts: handler.apply_many(requests, contexts=contexts),
            linger_s=settings.feedback_linger_s,
            observe=self.metrics.feedback_batch_size.observe,
        )
        self._live = LiveModels(models, stores.counters, settings, self.metrics)

    @property
    def models(self) -> DecisionModels:
        """The models in force (a request takes them once: a hot swap replaces them whole)."""
        return self._live.current

    def use_kb(self, kb: KnowledgeBase, version: str) -> None:
        """Serve from ``kb`` from now on (a new live-KB version): one atomic swap."""
        self._live.use_kb(kb, version)

    def start(self) -> None:
        """Load the shared article statistics and keep them and the models fresh; start the
        feedback batcher."""
        self._live.start()
        self._feedback_batches.start()

    def close(self) -> None:
        self._feedback_batches.close()
        self._live.close()

    # --- personalize ------------------------------------------------------------------
    def personalize(
        self,
        request: PersonalizeRequest,
        *,
        template_id: str | None = None,
        message_event_id: str | None = None,
    ) -> PersonalizeResponse:
        """``template_id`` (a KB template) overrides the intent's template (Rasa's NLG names
        the response); ``message_event_id`` is the id of the message event it logs (the
        chatbot's own, so the same message arriving as an event too counts once)."""
        return PersonalizeResponse.model_validate(
            self.personalize_payload(
                request, template_id=template_id, message_event_id=message_event_id
            )
        )

    async def read_user_ahead(self, request: PersonalizeRequest) -> UserRead | None:
        """The user's read, awaited before a decision computed on the event loop, where the
        store is a network one (its round trip would otherwise hold up the loop); ``None`` on
        the embedded store, whose local read the decision makes itself. A message too long
        is refused first (413), as the decision would."""
        reader = self.stores.async_user_reader
        if reader is None:
            return None
        self._check_lengths(request.message, request.last_bot_message)
        received_at = now_iso()  # before the user is read: see message_event
        started = time.perf_counter()
        with backend_errors():
            profile, record = await reader(request.user_id)
        return UserRead(received_at, profile, record, time.perf_counter() - started)

    def personalize_payload(
        self,
        request: PersonalizeRequest,
        *,
        template_id: str | None = None,
        message_event_id: str | None = None,
        user: UserRead | None = None,
    ) -> dict[str, Any]:
        """:meth:`personalize`'s answer as JSON-ready data (what the lean route writes);
        ``user``: the user as :meth:`read_user_ahead` read them (else read here)."""
        # The request's fields read once: a pydantic model's attribute reads are never
        # specialized (some 400 instructions each), and a decision used each several times.
        user_id, session_id, message = request.user_id, request.session_id, request.message
        bot_message, asked = request.last_bot_message, request.context
        channel, language, product = asked.channel, asked.language, asked.product
        self._check_lengths(message, bot_message)
        # Before the user is read: see message_event.
        received_at = user.received_at if user is not None else now_iso()
        read_s = user.read_s if user is not None else 0.0  # the read made ahead, if any
        clock = time.perf_counter
        started = clock()
        models = self.models  # one set for the whole decision, even across a hot swap
        prediction = models.intent.predict_one(message)
        intent_done = clock()

        profile, view = self._read_user(user_id, user)
        turn = Turn(session_id, message, bot_message)
        prediction = self.conversation.apply(prediction, turn, view, models.intent)
        features_done = clock()

        arm = self.experiment.arm_for(user_id)
        personalized = arm == PERSONALIZED_ARM
        recommend_from = clock()
        articles = self._articles(
            message, language, prediction, view, profile, personalized, models
        )
        recommend_done = clock()

        template = self._template(template_id, prediction, models)
        asked_for = (user_id, session_id, channel, language, product)
        decision = self._decide(
            asked_for, prediction, view, profile, arm, articles, template, models, received_at
        )
        response_done = clock()

        record = decision["record"]
        event = message_event(
            record["decision_id"], user_id, session_id, channel, message, prediction, received_at
        )
        self._record(event, prediction, record, message_event_id)
        record_done = clock()
        self._observe(len(message), decision)
        timings = _timings(
            intent_done - started, features_done - intent_done + read_s,
            recommend_done - recommend_from, response_done - recommend_done,
            record_done - response_done, clock() - started + read_s,
        )  # fmt: skip
        return personalize_payload(
            decision, prediction, cited(articles, models.composer.kb), view, profile, timings
        )

    def _read_user(
        self, user_id: str, read: UserRead | None = None
    ) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
        """The user's profile and, with personalization consent, their feature view (from
        ``read`` where it was read ahead)."""
        if read is not None:
            profile, record = read.profile, read.record
        else:
            with backend_errors():
                profile, record = self.stores.profile_and_record(user_id)
        if not consents_to_personalization(profile):
            return profile, None
        return profile, feature_view(record, profile, time.time())

    def _articles(
        self,
        message: str,
        language: str | None,
        prediction: Any,
        view: Mapping[str, Any] | None,
        profile: Mapping[str, Any] | None,
        personalized: bool,
        models: DecisionModels,
    ) -> list[Any]:
        if (
            prediction.fallback.reason in NO_ARTICLE_REASONS
            or prediction.name in NO_ARTICLE_INTENTS
        ):
            return []
        return models.recommenders.recommend(
            view,
            message,
            prediction.name,
            prediction.confidence,
            k=self._recommendations,
            personalized=personalized,
            tier=(profile or {}).get("tier"),
            language=language or (profile or {}).get("language"),
        )

    def _decide(
        self,
        asked: tuple[str, str, str, str | None, str | None],
        prediction: Any,
        view: Mapping[str, Any] | None,
        profile: Mapping[str, Any] | None,
        arm: str,
        articles: list[Any],
        template: ResponseTemplate,
        models: DecisionModels,
        received_at: str,
    ) -> dict[str, Any]:
        """The response variant (bandit or control), its text and the decision record;
        ``asked``: the request's user, session, channel, language and product."""
        fallback = prediction.fallback
        user_id, session_id, channel, language, product = asked
        context = decision_context(
            view, profile, models.attributes, {"channel": channel, "language": language}
        )
        variants = template.variants.names
        variant, propensity, context, explored = self._variant(arm, view, context, variants, models)
        about = models.composer.reply_article(template, prediction.name, articles)
        text = models.composer.render(template, variant, view, profile, product, articles, about)
        record = decision_record(
            user_id, session_id, channel, template.id,
            (variant, propensity, context), arm, view is not None and arm == PERSONALIZED_ARM,
            models.versions,
            {
                "intent": prediction.name,
                "confidence": prediction.confidence,
                "fallback": fallback.reason,
                "language": prediction.language,
                "follow_up": prediction.follow_up,
                "articles": [a.article_id for a in articles],
                "reply_article": about.article_id if about is not None else None,
            },
            created_at=received_at,
            experiment=self.experiment.name,
        )  # fmt: skip
        return {"record": record, "text": text, "explored": explored}

    def _template(
        self, template_id: str | None, prediction: Any, models: DecisionModels
    ) -> ResponseTemplate:
        composer = models.composer
        chosen = composer.kb.template(template_id) if template_id is not None else None
        if chosen is not None:
            return chosen
        fallback = prediction.fallback
        return composer.template_for(
            prediction.name, fallback.triggered, fallback.reason, prediction.language
        )

    def _variant(
        self,
        arm: str,
        view: Mapping[str, Any] | None,
        context: dict[str, float],
        variants: list[str],
        models: DecisionModels,
    ) -> tuple[str, float, dict[str, float], bool]:
        """The variant (bandit or control), its propensity, the context it was chosen in, and
        whether the bandit explored (chose a variant scored below its best)."""
        if arm == PERSONALIZED_ARM:
            choice, context = models.policy.choose_for(view, context, variants)
            return choice.arm, choice.propensity, context, choice.explored
        # also the pre-period; the record keeps the whole context (off-policy evaluation)
        variant, propensity = self._control_choice(variants, models, context)
        return variant, propensity, context, False

    def _record(
        self,
        event: dict[str, Any],
        prediction: Any,
        record: dict,
        message_event_id: str | None = None,
    ) -> None:
        # Queued: the recorder appends the message event, then stores the decision, in a
        # batch with others (see recorder.py for what a crash can lose).
        if message_event_id is not None:
            event["event_id"] = message_event_id  # the caller's own id: the door checks it
            self.recorder.record(record, event)
        else:  # every value checked already: not validated again (else the door does)
            self.recorder.record(record, checked_message(event) or event)
        outcome = "fallback" if prediction.fallback.triggered else "answered"
        self.metrics.count_decision(outcome)

    def respond(
        self, user_id: str, session_id: str, template_id: str | None, channel: str = "chat"
    ) -> dict[str, Any]:
        """A reply with no customer message to read (a greeting, a follow-up): the template
        ``template_id`` (else the default one) in the variant the bandit picks for this
        customer, recorded as a decision for feedback. Returns the decision record plus
        ``text``."""
        received_at = now_iso()  # before the user is read: see decision_record
        profile, view = self._read_user(user_id)
        arm = self.experiment.arm_for(user_id)
        models = self.models  # one set for the whole reply, even across a hot swap
        composer = models.composer
        named = composer.kb.template(template_id) if template_id else None
        template = named or composer.template_for("", fallback=False)  # "": the default
        context = decision_context(view, profile, models.attributes, {"channel": channel})
        variant, propensity, context, _ = self._variant(
            arm, view, context, template.variants.names, models
        )
        text = composer.render(template, variant, view, profile, None, [])
        record = decision_record(
            user_id, session_id, channel, template.id, (variant, propensity, context), arm,
            view is not None and arm == PERSONALIZED_ARM, models.versions,
            {"intent": None, "articles": []}, created_at=received_at,
            experiment=self.experiment.name,
        )  # fmt: skip
        with backend_errors():
            written = self.stores.decisions.put(record["decision_id"], user_id, record)
            # Refused when the user was erased since the read: the archive must not keep it.
            if written and self.archive is not None:
                self.archive.put("decision", record)
        return {**record, "text": text}

    def _observe(self, message_chars: int, decision: dict[str, Any]) -> None:
        """The decision's health figures: intent, confidence, length (drift), fallback, variant."""
        record = decision["record"]
        self.metrics.observe_decision(
            record["intent"],
            record["confidence"],
            message_chars,
            record["fallback"],
            record["arm"],
            record["variant"],
            explored=decision["explored"],
        )

    def _check_lengths(self, message: str, bot_message: str | None) -> None:
        """413 before anything is predicted or stored (the message event would be refused)."""
        check_text_length("message", message, self._max_text_chars)
        check_text_length("last_bot_message", bot_message, self._max_text_chars)

    def _control_choice(
        self, variants: list[str], models: DecisionModels, context: Mapping[str, float]
    ) -> tuple[str, float]:
        control = models.control
        if control is None:
            fixed = self.settings.control_variant
            return (fixed if fixed in variants else variants[0]), 1.0
        choice = control.choose(non_personal(context), variants)
        return choice.arm, choice.propensity

    def experiment_report(self) -> ExperimentReport:
        with backend_errors():
            return self.experiment.report(self.stores.counters)

    # --- feedback ---------------------------------------------------------------------
    def feedback(self, request: FeedbackRequest) -> FeedbackResponse:
        """Apply feedback to its decision, once (see :mod:`.feedback_handler`); blocks."""
        return self._feedback.apply(request)

    def feedback_batch(self, requests: list[FeedbackRequest]) -> list[FeedbackResponse | Exception]:
        """Apply many feedbacks at once, as the feedback batcher does (one log append, one
        store write): each one's answer or error, in order; blocks."""
        return self._feedback.apply_many(requests)

    def submit_feedback(self, request: FeedbackRequest) -> Future[FeedbackResponse]:
        """Apply feedback in the batcher's next batch (:mod:`.feedback_batcher`): its
        answer's future. That raises :class:`DecisionNotWritten` for a decision not in the
        store yet, which :meth:`feedback` alone waits for."""
        return self._feedback_batches.submit(request)


def _timings(
    intent: float, features: float, recommend: float, response: float, record: float, total: float
) -> dict[str, float]:
    """Each stage's seconds in milliseconds to the microsecond: ``round(ms, 3)`` but for the
    rare tie, at half its cost (``round`` with digits converts to decimal). One call a
    decision with the dict written out: a call per stage, or a comprehension over the
    names, cost a third more."""
    return {
        "intent": round(intent * 1e6) / 1e3,
        "features": round(features * 1e6) / 1e3,
        "recommend": round(recommend * 1e6) / 1e3,
        "response": round(response * 1e6) / 1e3,
        "record": round(record * 1e6) / 1e3,
        "total": round(total * 1e6) / 1e3,
    }
