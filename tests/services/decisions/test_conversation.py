"""The decision path with the built-in intents, follow-ups and languages (a real runtime)."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import pytest

from tailorbot.config import Settings
from tailorbot.models import registry
from tailorbot.models.intent import (
    TfidfIntentModel,
    bundled_dataset,
    train_language_routed_model,
)
from tailorbot.models.intent.training import TrainedIntentModel
from tailorbot.services.decisions import DecisionService
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


def test_a_german_message_falls_back_in_german(service: DecisionService) -> None:
    answer = ask(service, "u3", "Meine Karte ist immer noch nicht angekommen, wo bleibt sie?")
    assert answer.intent.language == "de"
    assert answer.fallback.reason == "unsupported_language"
    assert answer.response.template_id == "fallback-de" and not answer.articles
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
