"""The customer's memory of each offered variant, compiled (csrc/context.c, action_features)
against its Python reference (action_features_in_python): the same variants in the same
order, the same floats bit for bit."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tailorbot.features.context import (
    ACTION_KEYS,
    OWN_PRIOR_WEIGHT,
    action_features,
    action_features_in_python,
)
from tailorbot.features.segment_memory import SegmentVariantStats
from tailorbot.features.view import feature_view
from tests.native_support import loops, needs_build
from tests.stream.eventgen import T0, VARIANTS, event_streams, record_of

compiled = getattr(loops, "action_features", None)  # None: not built (see native_support)
STATS = SegmentVariantStats.from_counters(
    {
        "vip|concise|n": 4,
        "vip|concise|sum": 3,
        "all|concise|n": 10,
        "all|concise|sum": 5,
        "new|step_by_step|n": 2,
        "new|step_by_step|sum": 2,
        "all|step_by_step|n": 3,
        "all|step_by_step|sum": 1.5,
    }  # fmt: skip
)


def same(view: dict, variants: object, stats: SegmentVariantStats = STATS) -> dict:
    got = action_features(view, variants, stats)  # type: ignore[arg-type]
    want = action_features_in_python(view, variants, stats)  # type: ignore[arg-type]
    assert [(v, list(f.items())) for v, f in got.items()] == [
        (v, list(f.items())) for v, f in want.items()
    ]
    return got


@needs_build
@settings(max_examples=150, deadline=None)
@given(
    events=event_streams(max_users=1),
    hours=st.integers(0, 24 * 40),
    variants=st.lists(st.sampled_from((*VARIANTS, "other")), min_size=1, max_size=5),
    tier=st.sampled_from((None, "gold")),
)
def test_the_compiled_features_of_any_view_are_the_python_reference(
    events: list[dict], hours: int, variants: list[str], tier: str | None
) -> None:
    record = record_of(events)
    view = feature_view(record, {"tier": tier} if tier else None, T0 + hours * 3600)
    priors = STATS.priors(view["segment"], variants)
    assert compiled(view, variants, priors, ACTION_KEYS, OWN_PRIOR_WEIGHT) is not None
    same(view, variants)
    same(view, tuple(variants), SegmentVariantStats())


@needs_build
def test_what_the_python_path_must_read_is_left_to_it() -> None:
    memory = {"concise": {"recent_weight": 2, "recent_mean": 1}, "terse": None}
    got = same({"segment": "vip", "variant_rewards": memory}, ["concise", "terse", "concise"])
    assert list(got) == ["concise", "terse"]
    same({"segment": None, "variant_rewards": None}, ["concise"])
    same({}, ["concise"])
    others = {
        "a weight that is a bool": {"variant_rewards": {"a": {"recent_weight": True,
                                                              "recent_mean": 0.5}}},
        "a mean as text": {"variant_rewards": {"a": {"recent_weight": 1.0, "recent_mean": "1"}}},
        "memory of another type": {"variant_rewards": [("a", 1.0)]},
    }  # fmt: skip
    for name, view in others.items():
        priors = STATS.priors(None, ["a"])
        assert compiled(view, ["a"], priors, ACTION_KEYS, OWN_PRIOR_WEIGHT) is None, name
    same(others["a weight that is a bool"], ["a"])
    with pytest.raises(KeyError):  # a recent mean without its weight, on both paths
        action_features({"variant_rewards": {"a": {"recent_mean": 1.0}}}, ["a"], STATS)
    many = [f"v{i}" for i in range(65)]
    assert compiled({}, many, STATS.priors(None, many), ACTION_KEYS, OWN_PRIOR_WEIGHT) is None
    assert len(same({}, many)) == 65
    assert action_features(None, ["a"]) == {"a": {}}
