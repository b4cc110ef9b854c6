"""The conversation rules applied to an intent prediction before the bot decides.

1. **Follow-ups.** A short reply ("yes", "it still hasn't") is read in the session's context
   (:class:`~tailorbot.models.intent.followup.FollowUpResolver`):

   * the previous intent: the newest of the user's recent intents, when the user's last
     event is at most ``window_s`` old;
   * the bot's last message: the request's ``last_bot_message`` when the chatbot sends it,
     else the newest ``message`` event with ``role: bot`` of this session that no customer
     message followed (the feature view's ``last_bot_message``), when at most ``window_s``
     old. "yes" answers it only when it asked a question; a question that names a topic
     ("Has your card arrived yet?") gives the reply that topic.

   The features (recent intents, logged bot messages) are per-user features, so they need
   personalization consent; the request's ``last_bot_message`` does not.
2. **Hand-off on request.** ``human_handoff`` ("I want to talk to a human") triggers the
   fallback with the reason ``human_handoff``: the bot hands over with that intent's own
   template, not the "I didn't understand" one.

Small talk (greeting, thanks, goodbye) is never a fallback: those intents get their own
template and no articles (:data:`~tailorbot.kb.model.NO_ARTICLE_INTENTS`).

>>> from tailorbot.models.intent.base import FallbackDecision, IntentPrediction
>>> rules = ConversationRules()
>>> ask = IntentPrediction("human_handoff", 0.99, [], FallbackDecision(False))
>>> rules.apply(ask, Turn("s1", "I want a human"), None).fallback
FallbackDecision(triggered=True, reason='human_handoff')
>>> yes = IntentPrediction("affirm", 0.98, [("affirm", 0.98)], FallbackDecision(False))
>>> view = {"recent_intents": ["card_arrival"], "time_since_last_contact_s": 40.0}
>>> rules.apply(yes, Turn("s1", "yes"), view).name
'card_arrival'
>>> rules.apply(yes, Turn("s1", "yes", bot_message="Your card is on its way."), view).name
'affirm'
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any, NamedTuple

from tailorbot.models.intent.base import FallbackDecision, IntentModel, IntentPrediction
from tailorbot.models.intent.followup import FollowUpResolver

HANDOFF_INTENT = "human_handoff"
FOLLOW_UP_WINDOW_S = 1800.0  # a reply later than this starts a new conversation


class Turn(NamedTuple):
    """The customer's message and what the chatbot says of its context.

    ``bot_message`` is the bot's last message before it (``None``: the chatbot did not say;
    ``""``: the bot said nothing yet). A named tuple: every decision builds one.
    """

    session_id: str
    message: str
    bot_message: str | None = None


class ConversationRules:
    """Follow-ups in context and the hand-off on request (see the module doc)."""

    def __init__(
        self, resolver: FollowUpResolver | None = None, window_s: float = FOLLOW_UP_WINDOW_S
    ) -> None:
        self.resolver = resolver if resolver is not None else FollowUpResolver()
        self.window_s = window_s

    def apply(
        self,
        prediction: IntentPrediction,
        turn: Turn,
        view: Mapping[str, Any] | None,
        model: IntentModel | None = None,
    ) -> IntentPrediction:
        """``prediction`` of ``turn.message`` under the rules; ``model`` (the one that made
        the prediction) reads the topic of the bot's question."""
        prediction = self.resolver.resolve(
            prediction,
            turn.message,
            self.previous_intent(view),
            self.bot_message(turn, view),
            model,
        )
        if prediction.name == HANDOFF_INTENT and not prediction.fallback.triggered:
            prediction = replace(prediction, fallback=FallbackDecision(True, HANDOFF_INTENT))
        return prediction

    def previous_intent(self, view: Mapping[str, Any] | None) -> str | None:
        """The conversation's previous intent, or ``None`` (no view, none, or too old)."""
        if view is None or not view.get("recent_intents"):
            return None
        idle = view.get("time_since_last_contact_s")
        if idle is None or idle > self.window_s:
            return None
        return str(view["recent_intents"][-1])

    def bot_message(self, turn: Turn, view: Mapping[str, Any] | None) -> str | None:
        """The bot's last message: the chatbot's word for it, else the logged one of this
        session that the customer has not replied to (``None``: not known, or too old)."""
        if turn.bot_message is not None:
            return turn.bot_message
        logged = view.get("last_bot_message") if view is not None else None
        if not logged or logged.get("session_id") != turn.session_id:
            return None
        as_of = view.get("as_of") if view is not None else None
        if as_of is None or as_of - float(logged["time"]) > self.window_s:
            return None
        return str(logged["text"])
