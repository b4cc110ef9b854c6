"""The issue's conversation cases on the default model (see conftest.default_model)."""

from __future__ import annotations

import pickle

import pytest

from tailorbot.models.intent import (
    OUT_OF_SCOPE,
    UNSUPPORTED_LANGUAGE,
    LanguageRoutedIntentModel,
    TfidfIntentModel,
    bundled_dataset,
    default_dataset,
    evaluate_intent_model,
)
from tailorbot.models.intent.followup import FollowUpResolver

TRAINING_TEXTS = set(default_dataset("train").texts)


def answer(model, text: str):
    prediction = model.predict_one(text)
    return prediction.name, prediction.fallback.triggered


@pytest.mark.parametrize(
    "text",
    [
        "I want to talk to a human",
        "let me speak to an agent NOW this is useless",
        # not in the training rows:
        "can I please chat with an actual human being",
        "this robot is hopeless, put me through to a real agent",
    ],
)
def test_asking_for_a_person_is_a_hand_off(default_model, text: str) -> None:
    assert answer(default_model.model, text) == ("human_handoff", False)


@pytest.mark.parametrize(
    ("text", "intents"),
    [
        ("hi", {"greeting"}),
        ("hey there, good evening", {"greeting"}),
        ("thanks, bye", {"thanks", "goodbye"}),
        ("thanks a million for your help", {"thanks"}),
        ("yes", {"affirm"}),
        ("yes, please go ahead", {"affirm"}),
        ("nope, not that", {"deny"}),
    ],
)
def test_small_talk_is_understood_not_out_of_scope(default_model, text, intents) -> None:
    name, fired = answer(default_model.model, text)
    assert name in intents and not fired


def test_unseen_phrasings_really_are_unseen() -> None:
    for text in (
        "can I please chat with an actual human being",
        "hey there, good evening",
        "thanks a million for your help",
        "yes, please go ahead",
        "nope, not that",
    ):
        assert text not in TRAINING_TEXTS


def test_a_typo_ridden_question_finds_its_intent(default_model) -> None:
    assert answer(default_model.model, "how do i chnage my pin numbr") == ("change_pin", False)


def test_builtin_test_rows_are_recognized(default_model) -> None:
    test = bundled_dataset("builtin_intents", "test")
    assert not set(test.texts) & TRAINING_TEXTS
    metrics = evaluate_intent_model(default_model.model, test.texts, test.labels)
    assert metrics.accuracy >= 0.85


def test_out_of_scope_still_falls_back(default_model) -> None:
    prediction = default_model.model.predict_one("what's the weather like in Lisbon tomorrow")
    assert prediction.fallback.reason == OUT_OF_SCOPE


def test_a_german_card_question_is_marked_unsupported_not_out_of_scope(default_model) -> None:
    prediction = default_model.model.predict_one(
        "Meine Karte ist immer noch nicht angekommen, wo bleibt sie?"
    )
    assert prediction.language == "de"
    assert prediction.fallback.reason == UNSUPPORTED_LANGUAGE
    english = default_model.model.predict_one("my card still hasn't arrived, where is it?")
    assert english.language == "en" and english.name == "card_arrival"


GERMAN = {
    "card_arrival": [
        "Meine Karte ist noch nicht angekommen",
        "Wann kommt meine neue Karte an?",
        "Ich warte immer noch auf meine Karte",
        "Die Karte wurde nicht geliefert",
        "Wo bleibt meine Bankkarte?",
    ],
    "change_pin": [
        "Wie ändere ich meine PIN?",
        "Ich möchte meine Geheimzahl ändern",
        "Neue PIN festlegen",
        "Kann ich die PIN meiner Karte wechseln?",
        "PIN Nummer ändern bitte",
    ],
    "lost_or_stolen_card": [
        "Meine Karte wurde gestohlen",
        "Ich habe meine Karte verloren",
        "Karte weg, bitte sperren",
        "Jemand hat mein Portemonnaie mit der Karte gestohlen",
        "Ich finde meine Karte nicht mehr",
    ],
}


def test_a_german_model_answers_german_questions(default_model) -> None:
    texts = [t for rows in GERMAN.values() for t in rows]
    labels = [label for label, rows in GERMAN.items() for _ in rows]
    german = TfidfIntentModel().fit(texts, labels)
    english = default_model.model.default_model
    routed = LanguageRoutedIntentModel(
        {"en": english, "de": german}, "en", default_model.model.detector
    )
    prediction = routed.predict_one("Meine neue Karte ist bis heute nicht angekommen")
    assert (prediction.language, prediction.name) == ("de", "card_arrival")
    assert not prediction.fallback.triggered
    assert routed.predict_one("I want to talk to a human").name == "human_handoff"
    with pytest.raises(ValueError, match="lacks"):
        LanguageRoutedIntentModel({"en": german, "de": english}, "en")


def test_the_saved_model_round_trips_without_its_tables(default_model) -> None:
    blob = pickle.dumps(default_model.model)
    assert len(blob) < 30 * 2**20  # the 16 MB embedding table and the language model stay out
    loaded = pickle.loads(blob)
    for text in ("hi", "how do i chnage my pin numbr", "Wo ist meine Karte? Bitte helfen Sie"):
        assert loaded.predict_one(text) == default_model.model.predict_one(text)


def test_metadata_names_the_router_and_the_model(default_model) -> None:
    meta = default_model.metadata
    assert meta["model"] == "LanguageRoutedIntentModel"
    assert meta["default_model"] == "HybridIntentModel"
    assert meta["params"]["embeddings"] == "wordllama/l2_supercat"
    assert "de" in meta["detect_languages"]
    assert set(meta["labels"]) >= {"human_handoff", "greeting", OUT_OF_SCOPE}


@pytest.mark.parametrize(
    ("text", "previous", "expected"),
    [
        ("yes", "card_arrival", ("card_arrival", "affirm")),
        ("no", "card_arrival", ("card_arrival", "deny")),
        ("it still hasn't", "card_arrival", ("card_arrival", "continuation")),
        ("the same as before", "card_arrival", ("card_arrival", "continuation")),
        ("how long?", "card_arrival", ("card_arrival", "continuation")),
        # new turns: a confident question, small talk, no topic to follow
        ("my card was stolen yesterday", "card_arrival", ("lost_or_stolen_card", None)),
        ("thanks", "card_arrival", ("thanks", None)),
        ("yes", "greeting", ("affirm", None)),
        ("yes", None, ("affirm", None)),
        ("what's the weather in Rome", "card_arrival", ("out_of_scope", None)),
    ],
)
def test_short_replies_follow_the_previous_intent(default_model, text, previous, expected):
    resolver = FollowUpResolver()
    prediction = resolver.resolve(default_model.model.predict_one(text), text, previous)
    assert (prediction.name, prediction.follow_up) == expected
    if prediction.follow_up is not None:
        assert not prediction.fallback.triggered


@pytest.mark.parametrize(
    ("text", "previous", "bot", "expected"),
    [
        # the bot's question names the topic: no previous intent needed
        ("yes", None, "Has your card arrived yet?", ("card_arrival", "affirm")),
        ("no", None, "Has your new card arrived yet?", ("card_arrival", "deny")),
        ("it still hasn't", None, "Has your card arrived yet?", ("card_arrival", "continuation")),
        ("yes", "greeting", "Is your card lost or stolen?", ("lost_or_stolen_card", "affirm")),
        # the newest turn wins: the question's topic over the previous intent
        ("yes", "card_arrival", "Is your card lost or stolen?", ("lost_or_stolen_card", "affirm")),
        # a question that names no topic: the previous intent's
        ("yes", "card_arrival", "Is there anything else I can help you with?",
         ("card_arrival", "affirm")),
        ("yes", None, "Is there anything else I can help you with?", ("affirm", None)),
        # after a statement a yes or no answers nothing: classified alone
        ("yes", "card_arrival", "Your card was posted on Monday.", ("affirm", None)),
        ("no", "card_arrival", "Your card was posted on Monday.", ("deny", None)),
        # ... while a reply that means nothing alone still continues the topic
        ("the same as before", "card_arrival", "Your card was posted on Monday.",
         ("card_arrival", "continuation")),
    ],
)  # fmt: skip
def test_short_replies_answer_the_bots_last_question(default_model, text, previous, bot, expected):
    model = default_model.model
    prediction = FollowUpResolver().resolve(model.predict_one(text), text, previous, bot, model)
    assert (prediction.name, prediction.follow_up) == expected
    if prediction.follow_up is not None:
        assert not prediction.fallback.triggered


def test_the_batch_fallback_decides_as_each_message_is_served(default_model) -> None:
    """Each text by its own language's model and policy, and a text in a language without
    a model always falls back (unsupported_language), as predict_one does."""
    routed = default_model.model
    texts = [
        "my card still hasn't arrived, where is it?",
        "what's the weather like in Lisbon tomorrow",
        "Meine Karte ist immer noch nicht angekommen, wo bleibt sie?",
        "I want to talk to a human",
    ]
    fired = routed.fallback_fires(texts, routed.predict_proba(texts))
    assert fired.tolist() == [routed.predict_one(t).fallback.triggered for t in texts]
    assert fired.tolist() == [False, True, True, False]
