from __future__ import annotations

import dataclasses
import pickle

import pytest

from tailorbot.models.intent import LanguageDetector, bundled_dataset
from tailorbot.models.intent.base import FallbackDecision, IntentPrediction


@pytest.fixture(scope="module")
def detector() -> LanguageDetector:
    return LanguageDetector(("en", "de", "fr", "es", "it", "nl", "pt"))


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("Wo ist meine Karte? Ich habe sie vor zwei Wochen bestellt.", "de"),
        ("¿Dónde está mi tarjeta? La pedí hace dos semanas.", "es"),
        ("Ma carte ne fonctionne pas dans les magasins", "fr"),
        ("I still have not received my new card", "en"),
    ],
)
def test_detects_the_language(detector, text: str, language: str) -> None:
    assert detector.detect(text) == language


@pytest.mark.parametrize("text", ["ok", "hi", "no", "  danke  "])
def test_short_messages_are_undecided(detector, text: str) -> None:
    assert detector.detect(text) is None


def test_english_banking_questions_stay_english(detector) -> None:
    texts = bundled_dataset("banking77", "test").texts[::10]
    foreign = [t for t in texts if detector.detect(t) not in (None, "en")]
    assert len(foreign) / len(texts) < 0.01, foreign


def test_rejects_unknown_or_too_few_languages() -> None:
    with pytest.raises(ValueError, match="at least 2"):
        LanguageDetector(("en",))
    with pytest.raises(ValueError, match="does not know"):
        LanguageDetector(("en", "xx")).detect("some longer text to classify")


def test_pickles_without_its_model(detector) -> None:
    detector.detect("warm up the identifier please")
    assert len(pickle.dumps(detector)) < 10_000
    assert pickle.loads(pickle.dumps(detector)).detect("Meine Karte wurde gestohlen") == "de"


def test_a_prediction_in_a_language_is_what_replace_makes() -> None:
    # every field set to a value of its own, so a field added later and not passed on fails
    values = {
        "name": "card_arrival",
        "confidence": 0.75,
        "ranking": [("card_arrival", 0.75)],
        "fallback": FallbackDecision(True, "low_confidence"),
        "language": "en",
        "follow_up": "affirm",
    }
    assert [f.name for f in dataclasses.fields(IntentPrediction)] == list(values)
    prediction = IntentPrediction(**values)  # type: ignore[arg-type]
    assert prediction.in_language("de") == dataclasses.replace(prediction, language="de")
