"""Short replies read in the conversation's context: "yes", "it still hasn't", "no".

A reply of a few words rarely names its topic: "yes" after "Has your card arrived?" is about
``card_arrival``, and so is "it still hasn't". Classified alone, such a reply is ``affirm`` or
a low-confidence guess (which would fall back). :class:`FollowUpResolver` keeps the topic of
the session's previous intent when the reply

* has at most ``max_words`` words, and
* is ``affirm`` or ``deny`` (a yes/no to the bot's last question), or is uncertain (the
  fallback fired for low confidence or a small margin, or the top probability is under
  ``min_confidence``), or is ``out_of_scope`` with a probability under
  ``max_out_of_scope`` ("how long?", "where is it then" mean nothing alone; "what's the
  weather in Rome" stays out of scope);

and the previous intent is a topic (not a built-in conversational intent, not
``out_of_scope``). The resolved prediction names the previous intent, keeps the model's
probabilities and ranking of the reply itself, does not fall back, and says which kind of
follow-up it was in ``follow_up``: ``"affirm"``, ``"deny"`` or ``"continuation"``. A confident
reply ("card not working", "thanks") is a new turn and passes unchanged.

>>> from tailorbot.models.intent.base import FallbackDecision, IntentPrediction
>>> reply = IntentPrediction("affirm", 0.98, [("affirm", 0.98)], FallbackDecision(False))
>>> resolved = FollowUpResolver().resolve(reply, "yes", previous_intent="card_arrival")
>>> resolved.name, resolved.follow_up
('card_arrival', 'affirm')
"""

from __future__ import annotations

from dataclasses import replace

from tailorbot.config import BUILTIN_INTENTS
from tailorbot.models.intent.base import OUT_OF_SCOPE, FallbackDecision, IntentPrediction

ANSWER_INTENTS = ("affirm", "deny")
UNCERTAIN_REASONS = ("low_confidence", "small_margin")


class FollowUpResolver:
    """Resolves short replies against the previous intent (rules in the module doc).

    Parameters
    ----------
    max_words
        Longer messages are always new turns.
    min_confidence
        A short reply whose top probability is under this is read as a continuation.
    max_out_of_scope
        A short reply classified ``out_of_scope`` with at least this probability is a new,
        out-of-scope turn; under it, a continuation.
    """

    def __init__(
        self, max_words: int = 6, min_confidence: float = 0.7, max_out_of_scope: float = 0.9
    ) -> None:
        if max_words < 1:
            raise ValueError(f"max_words must be >= 1, got {max_words}")
        self.max_words = max_words
        self.min_confidence = min_confidence
        self.max_out_of_scope = max_out_of_scope

    def resolve(
        self, prediction: IntentPrediction, text: str, previous_intent: str | None
    ) -> IntentPrediction:
        """``prediction`` of ``text`` read in the context of ``previous_intent``."""
        kind = self.follow_up_kind(prediction, text, previous_intent)
        if kind is None or previous_intent is None:
            return prediction
        return replace(
            prediction, name=previous_intent, fallback=FallbackDecision(False), follow_up=kind
        )

    def follow_up_kind(
        self, prediction: IntentPrediction, text: str, previous_intent: str | None
    ) -> str | None:
        """``"affirm"``, ``"deny"``, ``"continuation"`` or ``None`` (a new turn)."""
        if not previous_intent or previous_intent in BUILTIN_INTENTS:
            return None
        if previous_intent == OUT_OF_SCOPE or len(text.split()) > self.max_words:
            return None
        if prediction.fallback.reason == "unsupported_language":
            return None  # a reply no model reads: answering it in context would be a guess
        if prediction.name in ANSWER_INTENTS:
            return prediction.name
        if prediction.fallback.reason == OUT_OF_SCOPE:
            return "continuation" if prediction.confidence < self.max_out_of_scope else None
        uncertain = prediction.fallback.reason in UNCERTAIN_REASONS
        if uncertain or prediction.confidence < self.min_confidence:
            return "continuation"
        return None
