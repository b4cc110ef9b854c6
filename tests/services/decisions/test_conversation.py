"""The decision path with the built-in intents, follow-ups and languages (a real runtime)."""

from __future__ import annotations

import functools
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tailorbot.config import Settings
from tailorbot.errors import PayloadTooLarge
from tailorbot.models import registry
from tailorbot.models.intent import (
    TfidfIntentModel,
    bundled_dataset,
    train_language_routed_model,
)
from tailorbot.models.intent.training import TrainedIntentModel
from tailorbot.services.decisions import DecisionService
from tailorbot.services.decisions.conversation import FOLLOW_UP_WINDOW_S, ConversationRules, Turn
from tailorbot.services.decisions.schemas import PersonalizeRequest
from tests.helpers import wait_until
from tests.services.decisions.conftest import SEED, ask, banking_slice, runtime_of


@functools.lru_cache(maxsize=1)
def conversational_model() -> TrainedIntentModel:
    """The conftest's 15-intent slice plus the built-in intents, routed by language."""
    data = (
        banking_slice()
        + bundled_dataset("builtin_intents", "train")
        + bundled_dataset("out_of_scope", "train")
    )
    return train_language_routed_model(
        {"en": data},
        detect_languages=Settings().detect_languages,
        seed=SEED,
        make_model=TfidfIntentModel,
    )


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    trained = conversational_model()
    registry.save(tmp_path, trained.model, trained.metadata, kind="intent")
    return tmp_path


@pytest.fixture
def service(make_service: Any) -> DecisionService:
    return make_service()[1]


def test_asking_for_a_person_hands_off_with_that_reason(service: DecisionService) -> None:
    answer = ask(service, "u1", "let me speak to an agent NOW this is useless")
    assert answer.intent.name == "human_handoff"
    assert answer.fallback.triggered and answer.fallback.reason == "human_handoff"
    assert answer.response.template_id == "tpl-human-handoff" and not answer.articles
    stored = runtime_of(service).stores.decisions.get(answer.decision_id)
    assert stored is not None and stored["fallback"] == "human_handoff"


@pytest.mark.parametrize(
    ("message", "template"),
    [("hi", "tpl-greeting"), ("thanks a lot", "tpl-thanks"), ("bye bye", "tpl-goodbye")],
)
def test_small_talk_gets_its_template_never_a_hand_off(
    service: DecisionService, message: str, template: str
) -> None:
    answer = ask(service, "u2", message)
    assert not answer.fallback.triggered
    assert answer.response.template_id == template and not answer.articles
    assert "{" not in answer.response.text


@pytest.mark.parametrize(
    ("message", "language", "words"),
    [
        ("Meine Karte ist immer noch nicht angekommen, wo bleibt sie?", "de", "Hallo"),
        ("Ma carte n'est toujours pas arrivée, où est-elle ?", "fr", "Bonjour"),
        ("Mi tarjeta todavía no ha llegado, ¿dónde está?", "es", "Hola"),
    ],
)
def test_a_card_question_in_another_language_falls_back_in_that_language(
    service: DecisionService, message: str, language: str, words: str
) -> None:
    answer = ask(service, "u3", message)
    assert answer.intent.language == language
    assert answer.fallback.reason == "unsupported_language"
    assert answer.response.template_id == f"fallback-{language}" and not answer.articles
    assert words in answer.response.text and "{" not in answer.response.text
    english = ask(service, "u3", "what's the weather in Paris tomorrow")
    assert english.intent.language == "en" and english.response.template_id == "fallback"


def test_a_short_reply_is_read_with_the_previous_intent(make_service: Any) -> None:
    runtime, service = make_service(worker=True)
    first = ask(service, "u4", "I ordered my card two weeks ago and it still has not arrived")
    assert first.intent.name == "card_arrival"

    def seen() -> bool:
        record = runtime.stores.features.get("u4")
        return record is not None and "card_arrival" in str(record.state.get("intents"))

    wait_until(seen, "the first message's intent in the user's features")
    reply = ask(service, "u4", "yes")
    assert (reply.intent.name, reply.intent.follow_up) == ("card_arrival", "affirm")
    assert not reply.fallback.triggered and reply.response.template_id == "tpl-card-arrival"
    other = ask(service, "u5", "yes")  # no conversation before: a plain yes
    assert (other.intent.name, other.intent.follow_up) == ("affirm", None)


def reply(service: DecisionService, user_id: str, message: str, **fields: Any) -> Any:
    request = PersonalizeRequest(user_id=user_id, session_id="s1", message=message, **fields)
    return service.personalize(request)


def test_a_reply_answers_the_bot_message_the_chatbot_sends(service: DecisionService) -> None:
    question = reply(service, "u6", "yes", last_bot_message="Has your new card arrived yet?")
    assert (question.intent.name, question.intent.follow_up) == ("card_arrival", "affirm")
    assert not question.fallback.triggered
    assert question.response.template_id == "tpl-card-arrival"
    statement = reply(service, "u6", "yes", last_bot_message="Your card was posted on Monday.")
    assert (statement.intent.name, statement.intent.follow_up) == ("affirm", None)
    unknown = reply(service, "u6", "yes")  # no bot message, no features: the reply alone
    assert (unknown.intent.name, unknown.intent.follow_up) == ("affirm", None)


def bot_says(runtime: Any, user_id: str, text: str, session_id: str = "s1") -> None:
    event = {"type": "message", "role": "bot", "user_id": user_id, "session_id": session_id,
             "timestamp": datetime.now(UTC).isoformat(), "text": text}  # fmt: skip
    assert runtime.ingestion.ingest([event]).accepted == 1

    def applied() -> bool:
        record = runtime.stores.features.get(user_id)
        return record is not None and (record.state.get("bot") or [None] * 3)[2] == text

    wait_until(applied, "the bot's message in the user's features")


def test_a_reply_answers_the_logged_bot_message(make_service: Any) -> None:
    runtime, service = make_service(worker=True)
    bot_says(runtime, "u7", "Has your new card arrived yet?")
    answer = reply(service, "u7", "no")
    assert (answer.intent.name, answer.intent.follow_up) == ("card_arrival", "deny")
    # the same question asked in another session is not this conversation's context
    bot_says(runtime, "u8", "Has your new card arrived yet?", session_id="s-other")
    other = reply(service, "u8", "no")
    assert (other.intent.name, other.intent.follow_up) == ("deny", None)
    # what the chatbot sends wins over what was logged
    sent = reply(service, "u7", "no", last_bot_message="Your card was posted on Monday.")
    assert (sent.intent.name, sent.intent.follow_up) == ("deny", None)


def test_a_too_long_bot_message_is_refused_naming_the_field(service: DecisionService) -> None:
    limit = service.settings.max_text_chars
    with pytest.raises(PayloadTooLarge) as refused:
        reply(service, "u9", "yes", last_bot_message="x" * (limit + 1))
    assert [p.field for p in refused.value.problems] == ["last_bot_message"]


def test_a_logged_bot_message_counts_in_its_session_while_recent() -> None:
    rules = ConversationRules()
    logged = {"time": 1000.0, "session_id": "s1", "text": "Did it arrive?"}
    view = {"as_of": 1060.0, "last_bot_message": logged}
    assert rules.bot_message(Turn("s1", "yes"), view) == "Did it arrive?"
    assert rules.bot_message(Turn("s2", "yes"), view) is None  # another conversation
    too_old = {**view, "as_of": 1000.0 + FOLLOW_UP_WINDOW_S + 1}
    assert rules.bot_message(Turn("s1", "yes"), too_old) is None
    assert rules.bot_message(Turn("s1", "yes", bot_message=""), view) == ""  # the chatbot's word
    assert rules.bot_message(Turn("s1", "yes"), None) is None
    assert rules.bot_message(Turn("s1", "yes"), {"as_of": 1060.0, "last_bot_message": None}) is None
