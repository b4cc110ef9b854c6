"""What every intent model answers: a top intent, a top-5 ranking and a fallback decision.

>>> p = IntentPrediction("card_arrival", 0.91, [("card_arrival", 0.91), ("card_linking", 0.04)],
...                      FallbackDecision(False))
>>> p.to_dict()["fallback"]
{'triggered': False, 'reason': None}
>>> p.to_dict()["language"] is None  # set by a language-routed model
True
"""

from __future__ import annotations

import functools
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from tailorbot.compiled import slotted_builder

if TYPE_CHECKING:
    from tailorbot.models.intent.fallback import FallbackPolicy

OUT_OF_SCOPE = "out_of_scope"
"""Training rows with this label are negatives: messages the bot must not answer."""

RANKING_SIZE = 5
# Fallback reasons that say the message is none the model knows (its out-of-scope class, or
# too far from every training message): no articles, the hand-over reply.
OUT_OF_SCOPE_REASONS = (OUT_OF_SCOPE, "unfamiliar")


@dataclass(frozen=True, slots=True)
class FallbackDecision:
    """Whether the bot should hand over instead of answering, and why.

    ``reason`` is ``"out_of_scope"`` (the model's top class is the negative class),
    ``"unfamiliar"`` (the message is farther from every training message than the policy's
    ``min_similarity``), ``"low_confidence"`` (top probability under the threshold),
    ``"small_margin"`` (the top two intents are too close to call) or
    ``"unsupported_language"`` (the message is in a language no trained model reads);
    ``None`` when not triggered.
    """

    triggered: bool
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class IntentPrediction:
    """The model's answer for one message; ``ranking`` holds the top-5 ``(intent, probability)``.

    ``language`` is the detected ISO 639-1 code of the message (``None`` when the model does
    not detect languages). ``follow_up`` is set when a short reply was read in the context of
    the previous intent (``"affirm"``, ``"deny"`` or ``"continuation"``; see
    :mod:`tailorbot.models.intent.followup`); ``name`` is then that previous intent.
    """

    name: str
    confidence: float
    ranking: list[tuple[str, float]]
    fallback: FallbackDecision
    language: str | None = None
    follow_up: str | None = None

    def in_language(self, language: str | None) -> IntentPrediction:
        """This prediction with ``language`` set: what ``dataclasses.replace`` makes, without
        its walk over the fields (some 20 k instructions, once a message behind the language
        router). Every field is passed (a test holds it to ``replace``).

        >>> prediction = IntentPrediction("card_arrival", 0.9, [], FallbackDecision(False))
        >>> prediction.in_language("de").language
        'de'
        """
        return _prediction_builder()(
            self.name, self.confidence, self.ranking, self.fallback, language, self.follow_up
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "confidence": self.confidence,
            "ranking": [{"name": n, "confidence": p} for n, p in self.ranking],
            "fallback": {"triggered": self.fallback.triggered, "reason": self.fallback.reason},
            "language": self.language,
            "follow_up": self.follow_up,
        }


class IntentModel(ABC):
    """A text classifier with calibrated probabilities and a fallback policy.

    Subclasses implement :meth:`predict_proba` (batch, for training and evaluation) and
    :meth:`predict_one` (the serving path, tuned for single-message latency).
    """

    fallback: FallbackPolicy

    @property
    @abstractmethod
    def labels(self) -> tuple[str, ...]:
        """Class names, in the column order of :meth:`predict_proba`."""

    @abstractmethod
    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """Probabilities, shape ``(len(texts), len(labels))``, rows summing to 1."""

    @abstractmethod
    def predict_one(self, text: str) -> IntentPrediction:
        """The prediction for one message (the serving path)."""

    def predict_many(self, texts: Sequence[str]) -> list[IntentPrediction]:
        """Predictions for many messages through the batch path."""
        probs = self.predict_proba(texts)
        similarity = self.fallback_similarity(texts)
        return [
            prediction_from_proba(
                row, self.labels, self.fallback, None if similarity is None else similarity[i]
            )
            for i, row in enumerate(probs)
        ]

    def fallback_similarity(self, texts: Sequence[str]) -> np.ndarray | None:
        """Each text's similarity to the training messages, when the fallback policy reads
        one (``min_similarity``) and the model can tell it; else ``None``."""
        return None

    def fallback_fires(self, texts: Sequence[str], probs: np.ndarray) -> np.ndarray:
        """Whether the fallback fires on each of ``texts`` (``probs``: their probabilities)."""
        return self.fallback.fires(probs, self.labels, self.fallback_similarity(texts))


def prediction_from_proba(
    probs: np.ndarray,
    labels: Sequence[str],
    fallback: FallbackPolicy,
    similarity: float | None = None,
) -> IntentPrediction:
    """Build an :class:`IntentPrediction` from one row of probabilities."""
    k = min(RANKING_SIZE, len(labels))
    negated = -probs
    top = np.argpartition(negated, k - 1)[:k] if len(labels) > k else np.arange(len(labels))
    top = top[np.argsort(negated[top], kind="stable")]
    ranking = [(labels[i], p) for i, p in zip(top.tolist(), probs[top].tolist(), strict=True)]
    return prediction_from_ranking(ranking, fallback, similarity)


def prediction_from_ranking(
    ranking: list[tuple[str, float]], fallback: FallbackPolicy, similarity: float | None = None
) -> IntentPrediction:
    """An :class:`IntentPrediction` from the top intents, best first, with probabilities."""
    decided = fallback.decide(ranking, similarity)
    return _prediction_builder()(ranking[0][0], ranking[0][1], ranking, decided, None, None)


@functools.cache
def _prediction_builder() -> Callable[..., IntentPrediction]:
    """What builds the serving path's predictions, every field given (a message makes two
    behind the language router): see :func:`tailorbot.compiled.slotted_builder`."""
    return slotted_builder(IntentPrediction)
