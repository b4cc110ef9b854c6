"""The bandit's context of a view, compiled (csrc/context.c) against its Python reference
(context_vector_in_python): the same keys in the same order and the same floats, bit for
bit."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tailorbot.features import context_vector as module
from tailorbot.features.context_vector import (
    CONTEXT_KEYS,
    context_vector,
    context_vector_in_python,
)
from tailorbot.features.segments import SegmentRules
from tailorbot.features.view import feature_view
from tests.native_support import loops, needs_build
from tests.stream.eventgen import T0, event_streams, record_of

compiled = getattr(loops, "context_vector", None)  # None: not built (see native_support)
TIERS = (None, "standard", "GOLD", "silver", "")


def same(view: dict, rules: SegmentRules = module.DEFAULT_RULES) -> dict:
    got, want = context_vector(view, rules), context_vector_in_python(view, rules)
    assert list(got.items()) == list(want.items())  # floats equal, keys in order
    assert all(type(v) is float for v in got.values())
    return got


@needs_build
@settings(max_examples=150, deadline=None)
@given(
    events=event_streams(max_users=1),
    hours=st.integers(-2, 24 * 40),
    tier=st.sampled_from(TIERS),
)
def test_the_compiled_context_of_any_view_is_the_python_reference(
    events: list[dict], hours: int, tier: str | None
) -> None:
    record = record_of(events)
    view = feature_view(record, {"tier": tier} if tier is not None else None, T0 + hours * 3600)
    assert compiled(view, module.DEFAULT_RULES.vip_tiers, module._CONSTANTS) is not None
    same(view)
    assert tuple(same(view, SegmentRules(vip_tiers=frozenset({"silver"})))) == CONTEXT_KEYS


@needs_build
def test_what_the_python_path_must_read_is_left_to_it() -> None:
    view = feature_view(None, {"tier": "gold"}, T0)
    same({**view, "csat_ewma": 2, "resolution_rate_30d": 1, "time_since_last_contact_s": 30})
    same({**view, "csat_ewma": 4.5, "handoff_rate_30d": 0.25, "sessions_30d": 90})
    others = {
        "a tier that is no str": {**view, "tier": 7},
        "a count that is no number": {**view, "events_24h": "3"},
        "segments as a tuple": {**view, "segments": ("vip",)},
        "no csat key": {k: v for k, v in view.items() if k != "csat_ewma"},
    }
    for name, other in others.items():
        assert compiled(other, module.DEFAULT_RULES.vip_tiers, module._CONSTANTS) is None, name
    same(others["segments as a tuple"])
    with pytest.raises(KeyError):
        context_vector(others["no csat key"])
    without_tier = {k: v for k, v in view.items() if k != "tier"}
    assert same(without_tier)["tier_other"] == 1.0

    class Always(SegmentRules):
        def is_vip_tier(self, tier: str | None) -> bool:
            return True

    assert context_vector(view, Always())["tier_vip"] == 1.0
    assert context_vector(feature_view(None, None, T0), Always())["tier_vip"] == 1.0
