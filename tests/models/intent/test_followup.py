from __future__ import annotations

import pytest

from tailorbot.models.intent.base import FallbackDecision, IntentPrediction
from tailorbot.models.intent.followup import FollowUpResolver, asks_a_question
from tailorbot.models.intent.tfidf import TfidfIntentModel


def prediction(name: str, p: float, reason: str | None = None) -> IntentPrediction:
    return IntentPrediction(name, p, [(name, p)], FallbackDecision(reason is not None, reason))


@pytest.mark.parametrize(
    ("reply", "text", "kind"),
    [
        (prediction("deny", 0.9), "no", "deny"),
        (prediction("card_arrival", 0.3, "low_confidence"), "still not", "continuation"),
        (prediction("card_arrival", 0.5, "small_margin"), "still not", "continuation"),
        (prediction("card_arrival", 0.95, "unfamiliar"), "the same as before", "continuation"),
        (prediction("top_up_failed", 0.6), "it didn't work", "continuation"),
        (prediction("out_of_scope", 0.8, "out_of_scope"), "how long?", "continuation"),
        (prediction("out_of_scope", 0.99, "out_of_scope"), "tell me a joke", None),
        (prediction("top_up_failed", 0.95), "top up failed", None),
        (prediction("affirm", 0.9), "yes " * 7, None),  # too long for a reply
        (prediction("affirm", 0.9, "unsupported_language"), "ja genau", None),
    ],
)
def test_follow_up_kinds(reply: IntentPrediction, text: str, kind: str | None) -> None:
    resolver = FollowUpResolver()
    assert resolver.follow_up_kind(reply, text) == kind
    resolved = resolver.resolve(reply, text, "card_arrival")
    if kind is None:
        assert resolved == reply
    else:
        assert resolved.name == "card_arrival" and resolved.follow_up == kind
        assert resolved.ranking == reply.ranking and not resolved.fallback.triggered


def test_no_topic_no_follow_up() -> None:
    resolver = FollowUpResolver()
    yes = prediction("affirm", 0.9)
    for previous in (None, "", "greeting", "human_handoff", "out_of_scope"):
        assert resolver.resolve(yes, "yes", previous) == yes
    with pytest.raises(ValueError, match="max_words"):
        FollowUpResolver(max_words=0)


@pytest.mark.parametrize(
    ("text", "asked"),
    [
        ("Has your card arrived yet?", True),
        ("Sorry to hear that. Has it arrived? Let me know.", True),
        ("Did that help?\n", True),
        ('You asked "why?" and here is the answer.', True),
        ("請問您的卡到了嗎？", True),
        ("Your card was sent on Monday.", False),
        ("See https://bank.example/help?topic=cards for the steps.", False),
        ("", False),
    ],
)
def test_a_question_is_told_from_a_statement(text: str, asked: bool) -> None:
    assert asks_a_question(text) is asked


CARD_QUESTIONS = (
    ["where is my new card", "my card has not arrived yet", "has my card been sent",
     "when will the card arrive"],
    ["how do I top up", "add money to my account", "top up with my bank card",
     "can I top up by transfer"],
    ["yes", "yes please", "no", "nope"],
)  # fmt: skip


@pytest.fixture(scope="module")
def small_model() -> TfidfIntentModel:
    texts = [t for rows in CARD_QUESTIONS for t in rows]
    labels = ["card_arrival"] * 4 + ["top_up"] * 4 + ["affirm", "affirm", "deny", "deny"]
    return TfidfIntentModel(correct_typos=False).fit(texts, labels)


def test_an_answer_needs_a_question(small_model: TfidfIntentModel) -> None:
    resolver = FollowUpResolver(min_confidence=0.3)
    yes = prediction("affirm", 0.95)
    statement = "Your new card was sent on Monday."
    assert resolver.resolve(yes, "yes", "card_arrival", statement, small_model) == yes
    assert resolver.resolve(yes, "yes", "card_arrival", "", small_model) == yes  # nothing said
    asked = resolver.resolve(yes, "yes", "card_arrival", "Shall I check it?", small_model)
    assert (asked.name, asked.follow_up) == ("card_arrival", "affirm")
    # a continuation after a statement keeps the previous intent's topic
    unsure = prediction("out_of_scope", 0.6, "out_of_scope")
    after = resolver.resolve(unsure, "how long?", "card_arrival", statement, small_model)
    assert (after.name, after.follow_up) == ("card_arrival", "continuation")


def test_the_bot_question_names_the_topic(small_model: TfidfIntentModel) -> None:
    resolver = FollowUpResolver(min_confidence=0.3)
    yes = prediction("affirm", 0.95)
    question = "Do you want to top up your account now?"
    assert resolver.question_topic(question, small_model) == "top_up"
    alone = resolver.resolve(yes, "yes", None, question, small_model)
    assert (alone.name, alone.follow_up) == ("top_up", "affirm")
    # the question is the newest turn: its topic wins over the previous intent
    assert resolver.resolve(yes, "yes", "card_arrival", question, small_model).name == "top_up"
    # without a model to read it, the previous intent is the topic
    assert resolver.resolve(yes, "yes", "card_arrival", question).name == "card_arrival"
    # a question naming no topic (its reading is an answer intent) leaves the previous one
    assert resolver.question_topic("yes or no?", small_model) is None
    assert resolver.resolve(yes, "yes", None, "yes or no?", small_model) == yes
