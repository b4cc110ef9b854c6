"""The feature view in one compiled call (csrc/view.c) against its Python reference
(features/view.py, view_in_python): the same keys in the same order, the same values of the
same types, for states as the stream worker keeps them in memory and as a decision decodes
them from the store, with any profile and segment rules."""

from __future__ import annotations

import copy
from types import SimpleNamespace

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tailorbot.features import view as view_module
from tailorbot.features.segments import SegmentRules
from tailorbot.features.state import new_state
from tailorbot.features.view import (
    EVENT_WIDTHS,
    RATE_WINDOW_S,
    VIEW_NAMES,
    feature_view,
    view_in_python,
)
from tailorbot.store.base import FeatureRecord
from tests.native_support import loops, needs_build
from tests.stream.eventgen import DAY, T0, event_streams, state_of, state_with

compiled = getattr(loops, "feature_view", None)  # None: not built (see native_support)
PROFILES = (
    None,
    {},
    {"tier": "GOLD", "name": "Ada", "language": "de", "region": "EU"},
    {"tier": None, "products": ["card"], "attributes": {"plan": "basic"}},
    {"consent": {"personalization": False}, "tier": "vip"},
)
CONSTANTS = view_module._CONSTANTS
RULES = view_module._DEFAULT_RULE_VALUES


def call(state: dict, now: float, profile: object = None, rules: tuple = RULES) -> object:
    record = FeatureRecord("u1", state, partition=0, offset=3, event_time=T0, updated_at=T0)
    return compiled(state, record, profile, now, True, CONSTANTS, rules)


def views(
    state: dict, now: float, profile: object, rules: SegmentRules | None = None
) -> tuple[dict, dict]:
    """(the view with the compiled call, the view of the Python reference) of one state; the
    state and the profile untouched by either."""
    record = FeatureRecord("u1", state, partition=0, offset=3, event_time=T0, updated_at=T0)
    rules = rules if rules is not None else view_module.DEFAULT_RULES
    before = copy.deepcopy((state, profile))
    got = feature_view(record, profile, now, rules)
    assert (state, profile) == before
    # the reference: the view module without the compiled call (the other passes as built)
    without = SimpleNamespace(message_features=loops.message_features)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(view_module, "native", lambda: without)
        want = feature_view(record, profile, now, rules)
    return got, want


def same(got: dict, want: dict) -> None:
    assert got == want
    # the same types too (an int is no float in JSON) and the same key order
    assert orjson.dumps(got) == orjson.dumps(want)


@needs_build
@settings(max_examples=300, deadline=None)
@given(events=event_streams(max_users=1), data=st.data())
def test_the_compiled_view_is_the_python_reference(events: list[dict], data: st.DataObject) -> None:
    # Any stream of one user's events, read at any hour or exactly a window's width after an
    # event, with or without a profile and consent; the state as applied and as stored.
    applied = state_of(events)
    stored = orjson.loads(orjson.dumps(applied))
    edges = [ts + w for ts in applied["ts"] for w in (0.0, *EVENT_WIDTHS, RATE_WINDOW_S)]
    hours = st.integers(-24, 24 * 40).map(lambda h: T0 + h * 3600.0)
    now = data.draw(st.sampled_from(edges) | hours if edges else hours)
    profile = data.draw(st.sampled_from(PROFILES))
    for state in (applied, stored):
        found = call(state, now, profile)
        assert found is not None
        assert list(found) == list(VIEW_NAMES)
        same(*views(state, now, profile))
    # a view without a record: no state, no user
    got = feature_view(None, profile, now)
    assert list(got) == list(VIEW_NAMES) and got["user_id"] is None


@needs_build
def test_each_part_read_from_a_state_is_the_references() -> None:
    now = T0 + 10 * DAY
    states = {
        "the bot's message unanswered": state_with(
            cm_ts=[now - 60.0], cm_intent=[None], bot=[now - 30.0, "s1", "Which card?"]
        ),
        "the bot's message answered": state_with(
            cm_ts=[now - 60.0, now - 10.0], cm_intent=[None, "a"], bot=[now - 30.0, "s1", "?"]
        ),
        "a bot's message and no customer's": state_with(bot=[now - 30.0, "s1", "Hi"]),
        "channels tied on events": state_with(
            channels={"email": [3, now - 5.0], "chat": [3, now - 5.0], "app": [2, now]}
        ),
        "channels by events, then the newest": state_with(
            channels={"email": [2, now - 5.0], "chat": [2, now - 1.0], "app": [1, now]}
        ),
        "ratings folded from no EWMA (an int kept)": state_with(
            alpha=0.3, ratings=[[now - 5.0, 4]], csat_n=1, csat_sum=4
        ),
        "ratings folded onto an EWMA": state_with(
            alpha=0.3,
            ewma=2.5,
            ratings=[[now - 5.0, 4], [now - 2.0, 1]],
            csat_n=3,
            csat_sum=7.5,
        ),
        "an EWMA and no rating left": state_with(alpha=0.3, ewma=4, csat_n=2, csat_sum=9),
        "outcomes and totals": state_with(
            outcomes=[[now - DAY, "concise", "kb-1", 1.0], [now - 40 * DAY, "", "kb-2", 0.0]],
            outcome_totals={"v": {"concise": [2, 1.5]}, "a": {}},
        ),
        "totals without outcomes": {
            **state_with(outcome_totals={"v": {}, "a": {"kb-1": [1, 1.0]}}),
            "outcomes": [],
        },
        "no memory keys (a record older than them)": {
            k: v for k, v in new_state().items() if k not in ("outcomes", "outcome_totals")
        },
        "article activity": state_with(
            views={"kb-2": now - 9.0, "kb-1": now - 9.0}, feedback={"kb-3": [now - 3.0, False]}
        ),
        "articles resolved, kept and live": state_with(
            views={"kb-1": now - 50.0, "kb-4": now - 9.0, "kb-2": now - 20.0},
            feedback={
                "kb-2": [now - 3.0, True],
                "kb-1": [now - 4.0, True],
                "kb-5": [now - 5.0, False],
            },
            resolved={
                "lost_card": {"kb-1": 2, "kb-2": 1},
                "": {"kb-2": 2},
                "card_arrival": {"kb-3": 1},
            },
            sessions={
                "s1": [
                    now - DAY,
                    now - DAY + 60.0,
                    None,
                    None,
                    now - DAY,
                    "lost_card",
                    None,
                    True,
                    "kb-2",
                    0,
                ],
                "s2": [
                    now - 2 * DAY,
                    now - 2 * DAY,
                    None,
                    None,
                    now - 2 * DAY,
                    None,
                    None,
                    True,
                    "kb-6",
                    0,
                ],
            },
        ),  # fmt: skip
        "articles resolved live only": state_with(
            sessions={
                "s1": [now - DAY, now - DAY, None, None, now - DAY, "a", None, True, "kb-1", 0]
            },
        ),  # fmt: skip
        "a history cut": state_with(cut_cap=now - 50 * DAY, late=4),
    }
    for name, state in states.items():
        for profile in PROFILES:
            got, want = views(state, now, profile)
            assert got == want, name
            assert orjson.dumps(got) == orjson.dumps(want), name
    found = call(states["article activity"], now)
    assert found["articles_viewed"] == ["kb-1", "kb-2"]  # viewed at once: by id
    assert found["articles_unhelpful"] == ["kb-3"]
    assert call(states["channels tied on events"], now)["preferred_channel"] == "chat"
    assert call(states["ratings folded from no EWMA (an int kept)"], now)["csat_ewma"] == 4
    # the reference for the two: a tie of events broken by name
    tied = states["channels tied on events"]
    assert view_in_python(None, tied, None, now, True)["preferred_channel"] == "chat"


@needs_build
def test_what_the_python_path_must_read_is_left_to_it() -> None:
    # None for any value the stream worker does not write: the Python reference then answers
    # (or raises) as it always did.
    now = T0 + 10 * DAY
    answered = {
        "an int newest": state_with(newest=int(now), first=int(now)),
        "an int alpha": state_with(alpha=1, ratings=[[now, 3]]),
        "a bool score": state_with(alpha=0.5, ratings=[[now, True]]),
        "a channel as a tuple": state_with(channels={"a": (1, now), "b": [2, now]}),
        "an int bot time": state_with(
            cm_ts=[now - 5.0], cm_intent=[None], bot=[int(now), "s", "?"]
        ),
        "a count beyond a double": state_with(csat_n=1, csat_sum=2**60),
        "a float count": state_with(csat_n=1.0, csat_sum=2.0),
        "a vote that is no bool": state_with(feedback={"kb-1": [now, 1]}),
        "a resolved count that is no int": state_with(resolved={"a": {"kb-1": 1.0}}),
        "an int message time": state_with(ts=[now - 1.0, int(now)]),
    }
    for name, state in answered.items():
        assert call(state, now) is None, name
        got, want = views(state, now, None)
        assert got == want, name
    assert call(state_with(), int(now)) is None  # a time that is not a float
    assert call(state_with(), now) is not None
    odd_profiles = {
        "a tier that is no str": {"tier": 3},
        "products as a tuple": {"products": ("card",)},
        "attributes of another mapping": {"attributes": SimpleNamespace()},
    }
    for name, profile in odd_profiles.items():
        assert call(state_with(), now, profile) is None, name
        if name == "products as a tuple":  # the others raise, on the Python path as before
            same(*views(state_with(), now, profile))
    record = FeatureRecord("u1", state_with(), partition=0, offset=0, event_time=T0, updated_at=T0)
    with pytest.raises(AttributeError):
        feature_view(record, {"tier": 3}, now)
    missing = {k: v for k, v in new_state().items() if k != "late"}
    assert call(missing, now) is None
    record = FeatureRecord("u1", missing, partition=0, offset=0, event_time=T0, updated_at=T0)
    with pytest.raises(KeyError):
        feature_view(record, None, now)
    raising = {
        "totals without their articles'": (
            state_with(outcome_totals={"v": {}}, outcomes=[[now, "a", "", 1.0]]),
            KeyError,
        ),
        "a rating of one item": (state_with(alpha=0.5, ratings=[[now]]), IndexError),
        "a session of another shape": (state_with(sessions={"s1": ["x"]}), IndexError),
        "an outcome of another shape": (state_with(outcomes=[[now, "a"]]), ValueError),
        "a view time that is no number": (state_with(views={"kb-1": "today"}), TypeError),
    }
    for name, (state, error) in raising.items():
        assert call(state, now) is None, name
        with pytest.raises(error):
            view_in_python(None, state, None, now, True)


@needs_build
def test_other_segment_rules_and_profiles() -> None:
    now = T0 + 10 * DAY
    state = state_with(
        first=now - 2 * DAY, csat_n=1, csat_sum=3, ewma=3.0, alpha=0.3, ratings=[],
        sessions={"s1": [now - DAY, now - DAY + 60.0, None, None, now - DAY, "a", None,
                         False, None, 0]},
    )  # fmt: skip
    rules = (
        SegmentRules(),
        SegmentRules(
            at_risk_csat=3.0, frequent_sessions_7d=1, new_for_s=DAY, vip_tiers=frozenset({"silver"})
        ),  # fmt: skip
        SegmentRules(at_risk_csat=3, at_risk_unresolved_streak=1),  # an int: Python's path
    )
    for rule in rules:
        for profile in (*PROFILES, {"tier": "Silver"}):
            same(*views(state, now, profile, rule))

    class Stricter(SegmentRules):
        def segments(self, view: object) -> list[str]:
            return ["stricter"]

    record = FeatureRecord("u1", state, partition=0, offset=0, event_time=T0, updated_at=T0)
    assert feature_view(record, None, now, Stricter())["segments"] == ["stricter"]
    assert call(state, now, rules=view_module._rule_values(rules[2])) is None


@needs_build
def test_the_arguments_are_checked() -> None:
    with pytest.raises(TypeError, match="exactly 7 arguments"):
        compiled(new_state(), None, T0)
    # names of another length, widths of another number, a retention that is no float
    for changed in (
        (CONSTANTS[0][:-1], *CONSTANTS[1:]),
        (CONSTANTS[0], CONSTANTS[1][:3], *CONSTANTS[2:]),
        (*CONSTANTS[:4], int(CONSTANTS[4]), *CONSTANTS[5:]),
        CONSTANTS[:-1],
    ):
        assert compiled(new_state(), None, None, T0, True, changed, RULES) is None
    assert compiled(new_state(), None, None, T0, True, CONSTANTS, RULES[:-1]) is None
