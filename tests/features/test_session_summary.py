"""The sessions' pass of the feature view: the compiled one answers as the Python one, and
takes every state the stream worker writes (a type check too strict would leave the busy
users it is for to the slow path, and no equality test would notice)."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tailorbot.compiled import native
from tailorbot.features import session_summary as summary_module
from tailorbot.features.session_summary import session_summary, summary_in_python
from tailorbot.features.sessions import new_session, set_outcome
from tailorbot.features.state import apply_event, new_state
from tailorbot.features.view import EVENT_WIDTHS, RATE_WINDOW_S, SESSION_WIDTHS
from tests.stream.eventgen import DAY, T0, event_streams

compiled = getattr(native(), "session_summary", None)
needs_build = pytest.mark.skipif(
    compiled is None or not hasattr(native(), "window_counts"),
    reason="tailorbot._native was not built",
)


def _python(sessions: dict, now: float) -> tuple:
    return summary_in_python(sessions, now, SESSION_WIDTHS, RATE_WINDOW_S)


@needs_build
@settings(max_examples=300, deadline=None)
@given(events=event_streams(max_users=1), data=st.data())
def test_the_compiled_pass_answers_as_the_python_one_on_worker_states(
    events: list[dict], data: st.DataObject
) -> None:
    """On states built by apply_event, as stored and read back (JSON): the same values of the
    same types, bit for bit; ``now`` any hour, or a window's edge after an event."""
    state = new_state()
    for event in events:
        apply_event(state, event, None)
    edges = [ts + width for ts in state["ts"] for width in (0.0, *SESSION_WIDTHS)]
    hours = st.integers(-24, 24 * 40).map(lambda h: T0 + h * 3600.0)
    now = data.draw(st.sampled_from(edges) | hours)
    stored = orjson.loads(orjson.dumps(state))
    for times in (state["ts"], state["cm_ts"], stored["ts"], stored["cm_ts"]):
        assert native().window_counts(times, now, EVENT_WIDTHS) is not None  # the view's too
    for sessions in (state["sessions"], stored["sessions"]):
        got = compiled(sessions, now, SESSION_WIDTHS, RATE_WINDOW_S)
        assert got is not None  # a state the worker wrote: never left to Python
        want = _python(sessions, now)
        assert repr(got) == repr(want)
        assert [type(v) for v in got] == [type(v) for v in want]


@needs_build
def test_ties_in_start_time_order_by_session_id_in_the_streak() -> None:
    """Two sessions starting at once: the later id is the newer one for the streak."""
    sessions = {}
    for sid, resolved in (("b", False), ("a", True), ("c", None)):
        sessions[sid] = new_session(T0)
        if resolved is not None:
            set_outcome(sessions[sid], T0 + 10.0, resolved, None)
    got = compiled(sessions, T0 + DAY, SESSION_WIDTHS, RATE_WINDOW_S)
    assert got == _python(sessions, T0 + DAY)
    assert got[3] == 1  # c (no outcome) skipped, b unresolved, then a resolved


@needs_build
@pytest.mark.parametrize(
    ("field", "value"),
    [(0, 5), (2, 7), (7, 1), (9, True), (5, 3), (8, 4), (0, float("nan"))],
    ids=[
        "int first",
        "int started",
        "int resolved",
        "bool handoffs",
        "int intent",
        "int article",
        "nan first",
    ],  # fmt: skip
)
def test_a_value_the_worker_does_not_write_is_left_to_python(field: int, value: object) -> None:
    session = new_session(T0)
    session[field] = value
    sessions = {"s1": session, "s2": new_session(T0 + 60.0)}
    assert compiled(sessions, T0 + DAY, SESSION_WIDTHS, RATE_WINDOW_S) is None
    summary = session_summary(sessions, T0 + DAY, SESSION_WIDTHS, RATE_WINDOW_S)
    counts, resolution, handoff, streak, lengths, resolutions = _python(sessions, T0 + DAY)
    assert (summary.counts, summary.unresolved_streak) == (counts, streak)
    assert repr(summary.resolutions) == repr(resolutions)


@needs_build
def test_short_sessions_and_other_ids_are_left_to_python() -> None:
    assert compiled({"s1": [T0, T0]}, T0, SESSION_WIDTHS, RATE_WINDOW_S) is None
    assert compiled({1: new_session(T0)}, T0, SESSION_WIDTHS, RATE_WINDOW_S) is None
    assert compiled({}, T0, SESSION_WIDTHS, RATE_WINDOW_S) == ([0, 0], None, None, 0, [], {})


def test_the_summary_is_the_same_without_the_build(monkeypatch: pytest.MonkeyPatch) -> None:
    """Where the extension is missing (or older, without the pass), the Python pass serves."""
    sessions = {"s1": new_session(T0), "s2": new_session(T0 + 3 * DAY)}
    set_outcome(sessions["s1"], T0 + 60.0, True, "kb-1")
    sessions["s2"][1] = T0 + 3 * DAY + 90.0
    built = session_summary(sessions, T0 + 8 * DAY, SESSION_WIDTHS, RATE_WINDOW_S)
    monkeypatch.setattr(summary_module, "native", lambda: None)
    python = session_summary(sessions, T0 + 8 * DAY, SESSION_WIDTHS, RATE_WINDOW_S)
    assert repr(python) == repr(built)
    assert python.counts == [1, 2] and python.mean_length_s == 45.0
    assert python.resolutions == {"": {"kb-1": 1}}
