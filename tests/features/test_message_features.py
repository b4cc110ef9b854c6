"""The feature view's message features in one compiled call (csrc/messages.c) against their
Python reference (features/view.py, message_features_in_python)."""

from __future__ import annotations

import copy

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tailorbot.compiled import native
from tailorbot.features import view as view_module
from tailorbot.features.state import new_state
from tailorbot.features.view import (
    EVENT_WIDTHS,
    RATE_WINDOW_S,
    feature_view,
    message_features_in_python,
)
from tailorbot.store.base import FeatureRecord
from tests.stream.eventgen import DAY, T0, event_streams, state_of, state_with

loops = native()
compiled = getattr(loops, "message_features", None)
needs_build = pytest.mark.skipif(
    compiled is None, reason="the extension is not built here (tests/test_native.py requires it)"
)


def both(state: dict, now: float) -> tuple[object, object]:
    """(the compiled answer, the Python reference's) for one state, the state untouched."""
    before = copy.deepcopy(state)
    found = compiled(state, now, EVENT_WIDTHS, RATE_WINDOW_S)
    assert state == before
    return found, message_features_in_python(state, now)


@needs_build
@settings(max_examples=300, deadline=None)
@given(events=event_streams(max_users=1), data=st.data())
def test_the_compiled_features_are_the_python_reference(
    events: list[dict], data: st.DataObject
) -> None:
    # Any stream of one user's events, read at any hour or exactly a window's width after an
    # event (the windows' edges): the same counts, intents, and intents' order.
    state = state_of(events)
    edges = [ts + width for ts in state["ts"] for width in (0.0, *EVENT_WIDTHS, RATE_WINDOW_S)]
    hours = st.integers(-24, 24 * 40).map(lambda h: T0 + h * 3600.0)
    now = data.draw(st.sampled_from(edges) | hours if edges else hours)
    found, want = both(state, now)
    assert found is not None
    assert found == want
    assert list(found[3].items()) == list(want[3].items())


@needs_build
def test_empty_and_missing_intents_are_not_counted_and_ties_rank_by_name() -> None:
    now = T0 + 10 * DAY
    times = [now - 40 * DAY, now - 3 * DAY, now - 2 * DAY, now - DAY, now - 1.0, now, now + 5.0]
    names = ["old", "b", None, "a", "", "b", "future"]
    state = state_with(cm_ts=times, cm_intent=names, intents=[[now - 1.0, "a"], (now, "b")])
    found, want = both(state, now)
    assert found == want
    assert list(found[3].items()) == [("b", 2), ("a", 1)]
    assert found[2] == ["a", "b"]  # a pair may be a tuple
    tied = state_with(cm_ts=times[1:4], cm_intent=["zeta", None, "alpha"])
    assert list(compiled(tied, now, EVENT_WIDTHS, RATE_WINDOW_S)[3]) == ["alpha", "zeta"]
    # the intents' list shorter than the times': the slice stops at its end
    short = state_with(cm_ts=times, cm_intent=names[:3])
    assert both(short, now)[0] == both(short, now)[1]


@needs_build
def test_what_the_python_path_must_read_is_left_to_it() -> None:
    # None for any value the stream worker does not write: the Python path then answers as
    # it always did, or raises as it did.
    now = T0 + 10 * DAY

    class Times(list):
        pass

    answered = [
        state_with(ts=[now - 1.0, int(now)]),  # an int compared exactly by bisect
        state_with(cm_ts=[now - 1.0], cm_intent=[7]),  # an intent that is no str
        state_with(cm_ts=[now - 1.0], cm_intent=["a"], intents=Times()),
        state_with(cm_ts=Times([now - 1.0]), cm_intent=["a"]),
    ]
    for state in answered:
        assert compiled(state, now, EVENT_WIDTHS, RATE_WINDOW_S) is None
        message_features_in_python(state, now)  # read by the Python path
    assert compiled(state_with(), int(now), EVENT_WIDTHS, RATE_WINDOW_S) is None
    assert compiled(state_with(), now, tuple(int(w) for w in EVENT_WIDTHS), RATE_WINDOW_S) is None
    assert compiled([], now, EVENT_WIDTHS, RATE_WINDOW_S) is None
    raising = {
        "intents": (state_with(intents=[[now, "a", "extra"]]), ValueError),
        "missing": ({k: v for k, v in new_state().items() if k != "cm_intent"}, KeyError),
    }
    for state, error in raising.values():
        assert compiled(state, now, EVENT_WIDTHS, RATE_WINDOW_S) is None
        with pytest.raises(error):
            message_features_in_python(state, now)


@needs_build
@settings(max_examples=100, deadline=None)
@given(events=event_streams(max_users=1), hours_after=st.integers(0, 24 * 40))
def test_the_view_is_the_same_without_the_compiled_call(
    events: list[dict], hours_after: int
) -> None:
    state = state_of(events)
    record = FeatureRecord("u0", state, partition=0, offset=0, event_time=0.0, updated_at=0.0)
    now = T0 + hours_after * 3600.0
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(view_module, "native", lambda: None)
        want = feature_view(record, {"tier": "gold"}, now)
    got = feature_view(record, {"tier": "gold"}, now)
    assert got == want
    assert list(got) == list(want)
