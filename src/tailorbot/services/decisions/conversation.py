"""The conversation rules applied to an intent prediction before the bot decides.

1. **Follow-ups.** A short reply ("yes", "it still hasn't") is read with the previous intent
   of the conversation: the newest of the user's recent intents, when the user's last event
   is at most ``window_s`` old (:class:`~tailorbot.models.intent.followup.FollowUpResolver`).
   The recent intents are per-user features, so this needs personalization consent; without
   it a reply is classified alone.
2. **Hand-off on request.** ``human_handoff`` ("I want to talk to a human") triggers the
   fallback with the reason ``human_handoff``: the bot hands over with that intent's own
   template, not the "I didn't understand" one.

Small talk (greeting, thanks, goodbye) is never a fallback: those intents get their own
template and no articles (:data:`~tailorbot.kb.model.NO_ARTICLE_INTENTS`).

>>> from tailorbot.models.intent.base import FallbackDecision, IntentPrediction
>>> rules = ConversationRules()
>>> ask = IntentPrediction("human_handoff", 0.99, [], FallbackDecision(False))
>>> rules.apply(ask, "I want a human", None).fallback
FallbackDecision(triggered=True, reason='human_handoff')
>>> yes = IntentPrediction("affirm", 0.98, [("affirm", 0.98)], FallbackDecision(False))
>>> view = {"recent_intents": ["card_arrival"], "time_since_last_contact_s": 40.0}
>>> rules.apply(yes, "yes", view).name
'card_arrival'
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from tailorbot.models.intent.base import FallbackDecision, IntentPrediction
from tailorbot.models.intent.followup import FollowUpResolver

HANDOFF_INTENT = "human_handoff"
FOLLOW_UP_WINDOW_S = 1800.0  # a reply later than this starts a new conversation


class ConversationRules:
    """Follow-ups in context and the hand-off on request (see the module doc)."""

    def __init__(
        self, resolver: FollowUpResolver | None = None, window_s: float = FOLLOW_UP_WINDOW_S
    ) -> None:
        self.resolver = resolver if resolver is not None else FollowUpResolver()
        self.window_s = window_s

    def apply(
        self, prediction: IntentPrediction, message: str, view: Mapping[str, Any] | None
    ) -> IntentPrediction:
        prediction = self.resolver.resolve(prediction, message, self.previous_intent(view))
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
