"""The sessions' pass of the feature view: the compiled one answers as the Python one, and
takes every state the stream worker writes (a type check too strict would leave the busy
users it is for to the slow path, and no equality test would notice)."""

from __future__ import annotations

import gc
from fractions import Fraction

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tailorbot.compiled import native
from tailorbot.features import session_summary as summary_module
from tailorbot.features.session_summary import session_summary, summary_in_python
from tailorbot.features.sessions import new_session, set_outcome
from tailorbot.features.view import EVENT_WIDTHS, RATE_WINDOW_S, SESSION_WIDTHS
from tests.stream.eventgen import DAY, T0, event_streams, state_of

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
    state = state_of(events)
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


@needs_build
@pytest.mark.parametrize("threshold", [1, 2, 3, 4, 5])
@pytest.mark.parametrize("victim", ["clear the sessions", "drop the articles"])
def test_a_collection_that_changes_the_sessions_mid_pass_leaves_it_sound(
    threshold: int, victim: str
) -> None:
    """An allocation in the pass may start a collection, whose callbacks (or finalizers) run
    Python code that may change the sessions: the pass reads each session once and holds
    what it keeps, so it answers from what it read (or None), and never from freed memory
    (before, this crashed the process or put a freed string in the answer)."""
    sessions = {}
    for i in range(100):
        sessions[f"s{i}"] = new_session(float(i))
        if victim == "drop the articles":  # resolutions: counted while the sessions are read
            set_outcome(sessions[f"s{i}"], float(i), True, f"article-{i}-" + "x" * 40)
            sessions[f"s{i}"][5] = f"intent-{i % 3}-" + "y" * 40
    articles = {s[8] for s in sessions.values()}
    intents = {s[5] for s in sessions.values()}

    def change() -> None:
        for session in sessions.values():
            if victim == "clear the sessions":
                session.clear()
            else:
                session[8] = session[5] = None

    armed = [True]

    def callback(phase: str, info: dict) -> None:
        if phase == "start" and armed[0]:
            armed[0] = False
            change()

    gc.collect()
    old = gc.get_threshold()
    gc.callbacks.append(callback)
    try:
        gc.set_threshold(threshold)
        got = compiled(sessions, 100.0, (10.0, 50.0), 1000.0)
    finally:
        gc.set_threshold(*old)
        gc.callbacks.remove(callback)
    if got is not None:
        counts, _, _, streak, lengths, resolutions = got
        assert set(resolutions) <= intents | {""}
        assert all(set(found) <= articles for found in resolutions.values())
        assert all(n >= 1 for found in resolutions.values() for n in found.values())
        assert len(lengths) <= 100 and streak == 0 and len(counts) == 2


@needs_build
@pytest.mark.parametrize("threshold", [1, 2, 3])
def test_a_collection_that_empties_the_times_mid_count_leaves_it_sound(threshold: int) -> None:
    """The same for the windows' counts."""
    times = [float(i) for i in range(1000)]
    armed = [True]

    def callback(phase: str, info: dict) -> None:
        if phase == "start" and armed[0]:
            armed[0] = False
            times.clear()

    gc.collect()
    old = gc.get_threshold()
    gc.callbacks.append(callback)
    try:
        gc.set_threshold(threshold)
        got = native().window_counts(times, 500.0, (10.0, 20.0, 30.0))
    finally:
        gc.set_threshold(*old)
        gc.callbacks.remove(callback)
    # counted before the one allocation that may collect (or, where the collection came
    # first, over the emptied list): a use of the freed items would answer neither
    assert got in ([10, 20, 30], [0, 0, 0])


@needs_build
def test_what_python_reads_otherwise_is_left_to_it() -> None:
    """A negative window is an empty slice; an int or a Fraction ``now``, an int width, a
    dict subclass: the compiled pass declines them (Python compares ints exactly)."""
    sessions = {"a": new_session(100.0), "b": new_session(155.0), "c": new_session(200.0)}
    got = compiled(sessions, 150.0, (10.0,), -10.0)
    assert repr(got) == repr(summary_in_python(sessions, 150.0, (10.0,), -10.0))
    assert got[1:5] == (None, None, 0, [])
    for now, widths in ((150, (10.0,)), (Fraction(3, 2), (10.0,)), (150.0, (10,))):
        assert compiled(sessions, now, widths, 30.0) is None
        assert summary_in_python(sessions, now, widths, 30.0)  # and Python reads them
    assert compiled(type("Sessions", (dict,), {})(sessions), 150.0, (10.0,), 30.0) is None
    many = tuple(float(w) for w in range(17))
    assert compiled(sessions, 150.0, many, 30.0) is None
    summary = session_summary(sessions, 150.0, iter([10.0, 60.0]), 30.0)  # any iterable
    assert summary.counts == [0, 1]
