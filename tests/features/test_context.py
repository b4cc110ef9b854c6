"""The bandit's decision context: the user's context vector plus declared profile attributes."""

from __future__ import annotations

import doctest
import time
from typing import Any

import pytest

from tailorbot.events.profile import UserProfile
from tailorbot.features import context as context_module
from tailorbot.features import segment_memory
from tailorbot.features.context import (
    ACTION_KEYS,
    REQUEST_KEYS,
    AttributeContext,
    action_features,
    decision_context,
    feature_names,
    request_features,
)
from tailorbot.features.context_vector import CONTEXT_KEYS
from tailorbot.features.segment_memory import SegmentVariantStats
from tailorbot.features.view import feature_view
from tailorbot.services.decisions.schemas import PersonalizeContext, PersonalizeRequest
from tests.services.decisions.conftest import WAIT_S, ask, runtime_of


def test_docstring_example_runs() -> None:
    assert doctest.testmod(context_module).failed == 0


def test_attributes_read_as_numbers_in_zero_one() -> None:
    ctx = AttributeContext(("new_account", "score", "segment=business", "vip", "label"))
    assert ctx.specs == ("new_account", "score", "segment=business", "vip", "label")
    profile = {
        "attributes": {
            "new_account": True,
            "score": 7,  # clipped to 1.0
            "segment": "business",
            "vip": float("nan"),  # not a number one can use: 0.0
            "label": "text",  # a plain spec reads bools and numbers only
        }
    }
    assert ctx.values(profile) == {
        "attr_new_account": 1.0,
        "attr_score": 1.0,
        "attr_segment=business": 1.0,
        "attr_vip": 0.0,
        "attr_label": 0.0,
    }
    assert ctx.values({"attributes": {"score": -3, "segment": "consumer"}}) == {
        "attr_new_account": 0.0,
        "attr_score": 0.0,
        "attr_segment=business": 0.0,
        "attr_vip": 0.0,
        "attr_label": 0.0,
    }
    assert ctx.values({"attributes": {"score": 0.25}})["attr_score"] == 0.25
    assert set(ctx.values(None).values()) == {0.0}


def test_an_equality_spec_compares_as_text() -> None:
    ctx = AttributeContext(("plan=3", "beta=True"))
    assert ctx.values({"attributes": {"plan": 3, "beta": True}}) == {
        "attr_plan=3": 1.0,
        "attr_beta=True": 1.0,
    }
    assert ctx.values({"attributes": {"plan": None}})["attr_plan=3"] == 0.0


def test_feature_names_are_the_context_vector_and_the_attributes() -> None:
    names = feature_names(AttributeContext(("new_account",)))
    assert "bias" not in names  # the bandit adds its own
    assert names == [
        *(k for k in CONTEXT_KEYS if k != "bias"),
        *REQUEST_KEYS,
        "attr_new_account",
        *ACTION_KEYS,
    ]


def test_the_decision_context_is_empty_without_a_view() -> None:
    ctx = AttributeContext(("new_account",))
    profile = {"attributes": {"new_account": True}}
    assert decision_context(None, profile, ctx) == {}, "no consent: the bias alone"

    view = feature_view(None, profile, time.time())
    context = decision_context(view, profile, ctx)
    assert set(context) == set(CONTEXT_KEYS) | set(REQUEST_KEYS) | {"attr_new_account"}
    assert context["channel_chat"] == 1.0 and context["language_non_default"] == 0.0
    assert context["attr_new_account"] == 1.0
    assert all(0.0 <= value <= 1.0 for value in context.values())


def test_declared_attributes_reach_the_stored_decision(make_service: Any) -> None:
    _, service = make_service(context_attributes=("new_account", "segment=business"))
    runtime_of(service).users.put_profile(
        "biz", UserProfile(tier="gold", attributes={"new_account": True, "segment": "business"})
    )
    answer = ask(service, "biz", "my card has not arrived")
    context = runtime_of(service).stores.decisions.get(answer.decision_id)["context"]
    assert context["attr_new_account"] == 1.0
    assert context["attr_segment=business"] == 1.0
    assert context["tier_vip"] == 1.0  # gold counts as a VIP tier
    assert list(service.models.policy.bandit.features)[-5:] == [
        "attr_new_account",
        "attr_segment=business",
        *ACTION_KEYS,
    ]
    # The chosen variant's action features are logged with the context (learned from).
    assert set(ACTION_KEYS) <= set(context)


def test_a_customer_with_history_reads_their_own_memory_a_new_one_their_segments() -> None:
    segments = SegmentVariantStats.from_counters(
        {
            "vip|concise|n": 50,
            "vip|concise|sum": 45,
            "vip|empathetic|n": 50,
            "vip|empathetic|sum": 10,
            "all|concise|n": 50,
            "all|concise|sum": 45,
            "all|empathetic|n": 50,
            "all|empathetic|sum": 10,
        }
    )
    new = action_features(
        {"segment": "vip", "variant_rewards": {}}, ["concise", "empathetic"], segments
    )
    assert new["concise"]["own_reward"] > new["empathetic"]["own_reward"]
    assert new["concise"]["own_evidence"] == 0.0
    memory = {
        "empathetic": {"recent_weight": 8.0, "recent_mean": 1.0},
        "concise": {"recent_weight": 8.0, "recent_mean": 0.0},
    }
    known = action_features(
        {"segment": "vip", "variant_rewards": memory}, ["concise", "empathetic"], segments
    )
    assert known["empathetic"]["own_reward"] > known["concise"]["own_reward"]
    assert known["empathetic"]["own_evidence"] == 0.8
    assert all(0.0 <= v <= 1.0 for f in known.values() for v in f.values())
    assert action_features(None, ["concise"], segments) == {"concise": {}}


def test_request_features_read_the_channel_and_the_language() -> None:
    assert request_features({"channel": "voice", "language": "EN"}, {"language": "de"}) == {
        "channel_chat": 0.0,
        "channel_email": 0.0,
        "channel_voice": 1.0,
        "channel_messaging": 0.0,
        "language_non_default": 0.0,  # the request's language wins over the profile's
    }
    unknown = request_features({"channel": "fax"}, None)
    assert sum(unknown.values()) == 0.0  # an unknown channel and the default language
    assert request_features(None, {"language": "fr"})["language_non_default"] == 1.0
    assert request_features(None, None)["channel_chat"] == 1.0  # the request default


def test_the_channel_and_language_reach_the_stored_decision(make_service: Any) -> None:
    _, service = make_service()
    request = PersonalizeRequest(
        user_id="anna",
        session_id="s1",
        message="my card has not arrived",
        context=PersonalizeContext(channel="email", language="es"),
    )
    answer = service.personalize(request)
    assert service.recorder.wait_written(answer.decision_id, timeout_s=WAIT_S)
    context = runtime_of(service).stores.decisions.get(answer.decision_id)["context"]
    assert context["channel_email"] == 1.0 and context["channel_chat"] == 0.0
    assert context["language_non_default"] == 1.0


def test_a_segments_mean_is_remembered_as_computed_and_the_memory_is_bounded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    counters = {"vip|concise|n": 4, "vip|concise|sum": 3, "all|concise|n": 10, "all|concise|sum": 5}
    stats = SegmentVariantStats.from_counters(counters)
    fresh = SegmentVariantStats.from_counters(counters)
    asked = [("vip", "concise"), (None, "concise"), ("new", "concise"), ("vip", "other")]
    for segment, variant in asked * 2:  # the second time from memory
        assert stats.mean(segment, variant) == fresh._mean(segment, variant)
    assert stats.mean("vip", "concise") == pytest.approx((3 + 5 * (5 + 2.5) / 15) / 9)
    monkeypatch.setattr(segment_memory, "MAX_MEANS", 8)
    for n in range(50):
        stats.mean(f"segment-{n}", "concise")
        assert len(stats._means) <= 8
