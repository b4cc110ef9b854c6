"""Short replies read in the conversation's context: "yes", "it still hasn't", "no".

A reply of a few words rarely names its topic: "yes" after "Has your card arrived?" is about
``card_arrival``, and so is "it still hasn't". Classified alone, such a reply is ``affirm`` or
a low-confidence guess (which would fall back). :class:`FollowUpResolver` reads it with the
session's context, the previous intent and the bot's last message, when the reply

* has at most ``max_words`` words, and
* is ``affirm`` or ``deny`` (an *answer*), or is uncertain (the fallback fired for low
  confidence or a small margin, or the top probability is under ``min_confidence``), or is
  ``out_of_scope`` with a probability under ``max_out_of_scope`` (a *continuation*: "how
  long?", "where is it then" mean nothing alone; "what's the weather in Rome" stays out of
  scope).

The bot's last message, when known, decides the rest:

* An answer needs a question: after a bot message that asks nothing ("Your card was sent on
  Monday."), "yes" and "no" are classified alone. With no bot message known, an answer
  follows the previous intent (the bot most likely asked about it).
* The topic is the one the bot's question names, when classifying the question alone gives
  a confident topic ("Has your card arrived yet?" -> ``card_arrival``: the newest turn of the
  conversation), else the previous intent. A continuation after a statement keeps the
  previous intent ("it still hasn't" after "Cards take 3 days to arrive.").

A topic is an intent that is not a built-in conversational intent and not ``out_of_scope``.
The resolved prediction names the topic, keeps the model's probabilities and ranking of the
reply itself, does not fall back, and says which kind of follow-up it was in ``follow_up``:
``"affirm"``, ``"deny"`` or ``"continuation"``. A confident reply ("card not working",
"thanks") is a new turn and passes unchanged.

>>> from tailorbot.models.intent.base import FallbackDecision, IntentPrediction
>>> reply = IntentPrediction("affirm", 0.98, [("affirm", 0.98)], FallbackDecision(False))
>>> resolver = FollowUpResolver()
>>> resolved = resolver.resolve(reply, "yes", previous_intent="card_arrival")
>>> resolved.name, resolved.follow_up
('card_arrival', 'affirm')
>>> resolver.resolve(reply, "yes", "card_arrival", bot_message="Your card was sent.").name
'affirm'
>>> asks_a_question("Sorry about that. Has it arrived yet? Let me know.")
True
"""

from __future__ import annotations

import re
from dataclasses import replace

from tailorbot.config import BUILTIN_INTENTS
from tailorbot.models.intent.base import (
    OUT_OF_SCOPE,
    FallbackDecision,
    IntentModel,
    IntentPrediction,
)

ANSWER_INTENTS = ("affirm", "deny")
UNCERTAIN_REASONS = ("low_confidence", "small_margin", "unfamiliar")
# A question mark ending a sentence: followed by the end, a space or closing punctuation
# (not the "?" of a URL's query string). Full-width "？" too.
_QUESTION = re.compile(r"[?？][\"'»”’)\]]*(?:\s|$)")


def asks_a_question(bot_message: str) -> bool:
    """Whether any sentence of ``bot_message`` ends with a question mark."""
    return _QUESTION.search(bot_message) is not None


def is_topic(intent: str | None) -> bool:
    """An intent a follow-up can be about: not built-in small talk, not out of scope."""
    return bool(intent) and intent not in BUILTIN_INTENTS and intent != OUT_OF_SCOPE


class FollowUpResolver:
    """Resolves short replies against the previous intent and the bot's last message.

    Parameters
    ----------
    max_words
        Longer messages are always new turns.
    min_confidence
        A short reply whose top probability is under this is read as a continuation; a bot
        question names a topic when classifying it gives at least this probability.
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
        self,
        prediction: IntentPrediction,
        text: str,
        previous_intent: str | None,
        bot_message: str | None = None,
        model: IntentModel | None = None,
    ) -> IntentPrediction:
        """``prediction`` of ``text`` read in its context: the session's ``previous_intent``
        and ``bot_message``, the bot's last message (``None``: not known). ``model`` reads
        the topic of a bot question; without it only the previous intent gives topics."""
        kind = self.follow_up_kind(prediction, text)
        if kind is None:
            return prediction
        asked = bot_message is not None and asks_a_question(bot_message)
        if kind in ANSWER_INTENTS and bot_message is not None and not asked:
            return prediction  # a yes or no to a statement: nothing to answer, read alone
        topic = self.question_topic(bot_message, model) if asked else None
        if topic is None and is_topic(previous_intent):
            topic = previous_intent
        if topic is None:
            return prediction
        return replace(prediction, name=topic, fallback=FallbackDecision(False), follow_up=kind)

    def follow_up_kind(self, prediction: IntentPrediction, text: str) -> str | None:
        """What ``text`` would be as a follow-up, from the reply alone: ``"affirm"``,
        ``"deny"``, ``"continuation"``, or ``None`` (a new turn whatever came before)."""
        if len(text.split()) > self.max_words:
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

    def question_topic(self, question: str | None, model: IntentModel | None) -> str | None:
        """The topic the bot's ``question`` names on its own, or ``None`` (no model, or the
        question is small talk, out of scope or not confidently one topic)."""
        if not question or model is None:
            return None
        read = model.predict_one(question)
        if read.fallback.triggered or read.confidence < self.min_confidence:
            return None
        return read.name if is_topic(read.name) else None
