"""One intent model per language, chosen by the detected language of each message.

A message whose language cannot be told (short, or unclear) goes to the default language's
model. A message in a detected language without a model is not guessed at: the prediction
carries the default model's ranking, the ``language`` and a fallback with reason
``"unsupported_language"``, so the decision path can answer with the configured behaviour
(hand over, in the customer's language) instead of treating German as out of scope.

>>> from tailorbot.models.intent.tfidf import TfidfIntentModel
>>> english = TfidfIntentModel().fit(
...     ["where is my new card", "my card has not arrived yet", "how do I top up",
...      "add money to my account"], ["card_arrival", "card_arrival", "top_up", "top_up"])
>>> routed = LanguageRoutedIntentModel({"en": english}, detector=LanguageDetector(("en", "de")))
>>> p = routed.predict_one("Meine Karte ist noch nicht angekommen, wo bleibt sie?")
>>> p.language, p.fallback.reason
('de', 'unsupported_language')
>>> routed.predict_one("my card still hasn't arrived").name
'card_arrival'
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace

import numpy as np

from tailorbot.models.intent.base import FallbackDecision, IntentModel, IntentPrediction
from tailorbot.models.intent.fallback import FallbackPolicy
from tailorbot.models.intent.language import LanguageDetector

UNSUPPORTED_LANGUAGE = "unsupported_language"


class LanguageRoutedIntentModel(IntentModel):
    """Routes each message to the model of its language.

    Parameters
    ----------
    models
        Language code -> a fitted model; every model's intents must be among the default's.
    default_language
        The language assumed when detection cannot tell; must have a model.
    detector
        The language detector; ``None`` sends everything to the default language's model.
    """

    def __init__(
        self,
        models: Mapping[str, IntentModel],
        default_language: str = "en",
        detector: LanguageDetector | None = None,
    ) -> None:
        if default_language not in models:
            raise ValueError(
                f"no model for the default language {default_language!r}; have {sorted(models)}"
            )
        default_labels = set(models[default_language].labels)
        for language, model in models.items():
            extra = sorted(set(model.labels) - default_labels)
            if extra:
                raise ValueError(
                    f"the {language!r} model has intents the {default_language!r} one lacks: "
                    f"{extra}"
                )
        self.models = dict(models)
        self.default_language = default_language
        self.detector = detector

    @classmethod
    def detecting(
        cls,
        models: Mapping[str, IntentModel],
        default_language: str = "en",
        detect_languages: Sequence[str] = (),
    ) -> LanguageRoutedIntentModel:
        """Routed by a detector over ``detect_languages`` (none with fewer than two)."""
        languages = tuple(detect_languages)
        detector = LanguageDetector(languages) if len(languages) >= 2 else None
        return cls(models, default_language, detector)

    @property
    def default_model(self) -> IntentModel:
        return self.models[self.default_language]

    @property
    def fallback(self) -> FallbackPolicy:  # type: ignore[override]
        return self.default_model.fallback

    @property
    def labels(self) -> tuple[str, ...]:
        return self.default_model.labels

    def language_of(self, text: str) -> str:
        """The detected language, or the default one when detection cannot tell."""
        detected = self.detector.detect(text) if self.detector is not None else None
        return detected or self.default_language

    def predict_one(self, text: str) -> IntentPrediction:
        language = self.language_of(text)
        model = self.models.get(language)
        if model is None:
            prediction = self.default_model.predict_one(text)
            return replace(
                prediction,
                fallback=FallbackDecision(True, UNSUPPORTED_LANGUAGE),
                language=language,
            )
        return model.predict_one(text).in_language(language)

    def predict_many(self, texts: Sequence[str]) -> list[IntentPrediction]:
        return [self.predict_one(text) for text in texts]

    def fallback_fires(self, texts: Sequence[str], probs: np.ndarray) -> np.ndarray:
        """As :meth:`predict_one` decides: each text by its language's model and policy, and
        a text in a language without a model always (``unsupported_language``). ``probs``
        are :meth:`predict_proba`'s: each language model's columns are read back from them."""
        fired = np.ones(len(texts), dtype=bool)
        for language, rows in self._rows_by_language(texts).items():
            model = self.models.get(language)
            if model is not None:
                own = probs[np.ix_(rows, self._columns_of(model))]
                fired[rows] = model.fallback_fires([texts[r] for r in rows], own)
        return fired

    def _columns_of(self, model: IntentModel) -> list[int]:
        """Where ``model``'s classes sit among the default model's columns."""
        columns = {name: i for i, name in enumerate(self.labels)}
        return [columns[name] for name in model.labels]

    def _rows_by_language(self, texts: Sequence[str]) -> dict[str, list[int]]:
        by_language: dict[str, list[int]] = {}
        for row, text in enumerate(texts):
            by_language.setdefault(self.language_of(text), []).append(row)
        return by_language

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """Each text's probabilities from its language's model (the default model's when
        its language has none), in the default model's column order."""
        out = np.zeros((len(texts), len(self.labels)))
        for language, rows in self._rows_by_language(texts).items():
            model = self.models.get(language, self.default_model)
            out[np.ix_(rows, self._columns_of(model))] = model.predict_proba(
                [texts[r] for r in rows]
            )
        return out
