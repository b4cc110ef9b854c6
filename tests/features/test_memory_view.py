"""The memory part of the feature view: the compiled pass answers as the Python one, bit for
bit, and takes every state the stream worker writes (a type check too strict would leave the
users who give feedback to the slow path, and no equality test would notice)."""

from __future__ import annotations

import gc

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tailorbot.compiled import native
from tailorbot.features import memory as memory_module
from tailorbot.features.memory import DECAY_PER_S, memory_in_python, memory_view
from tailorbot.features.params import RETENTION_S
from tests.stream.eventgen import DAY, T0, event_streams, state_of

compiled = getattr(native(), "memory_summaries", None)
needs_build = pytest.mark.skipif(compiled is None, reason="tailorbot._native was not built")


def _compiled(state: dict, now: float) -> object:
    totals = state["outcome_totals"]
    oldest = now - RETENTION_S
    return compiled(state["outcomes"], totals["v"], totals["a"], now, oldest, DECAY_PER_S)


def _both(state: dict, now: float) -> tuple[object, object]:
    return _compiled(state, now), memory_in_python(state["outcomes"], state["outcome_totals"], now)


def _same(got: object, want: object) -> None:
    """Equal values of equal types (repr tells 1 from 1.0 and -0.0 from 0.0) in one order."""
    assert got is not None
    assert repr(got) == repr(want)


@needs_build
@settings(max_examples=300, deadline=None)
@given(events=event_streams(max_users=1), data=st.data())
def test_the_compiled_memory_matches_python_on_worker_states(
    events: list[dict], data: st.DataObject
) -> None:
    """On states built by apply_event, as kept and as stored and read back (JSON); ``now``
    any hour, or exactly an outcome's time or the retention's edge after it."""
    state = state_of(events)
    edges = [o[0] + width for o in state["outcomes"] for width in (0.0, RETENTION_S)]
    hours = st.integers(-24, 24 * 40).map(lambda h: T0 + h * 3600.0)
    now = data.draw(st.sampled_from(edges) | hours if edges else hours)
    for kept in (state, orjson.loads(orjson.dumps(state))):
        _same(*_both(kept, now))


@needs_build
@settings(max_examples=200, deadline=None)
@given(
    outcomes=st.lists(
        st.tuples(
            st.floats(T0 - 40 * DAY, T0 + DAY) | st.sampled_from([T0, T0 - RETENTION_S]),
            st.sampled_from(["", "a", "b", "concise"]),
            st.sampled_from(["", "kb-1", "kb-2"]),
            st.sampled_from([0.0, 0.25, 0.5, 1.0, 0, 1, -0.0]),
        ).map(list),
        max_size=40,
    ),
    totals=st.dictionaries(
        st.sampled_from(["a", "b", "kb-1", "z"]),
        st.tuples(
            st.integers(0, 9) | st.sampled_from([2.0, 0.0]), st.sampled_from([0, 0.75, 3.5])
        ).map(list),
        max_size=4,
    ),
)
def test_folded_totals_ints_and_zeros_read_as_in_python(outcomes: list, totals: dict) -> None:
    """Totals folded with outcomes of the same keys, ints where floats are usual, a count of
    zero (no mean), a reward of -0.0 first (0.0 + -0.0 is 0.0, which would show)."""
    state = {"outcomes": sorted(outcomes), "outcome_totals": {"v": dict(totals), "a": dict(totals)}}
    _same(*_both(state, T0))


@needs_build
@pytest.mark.parametrize(
    "change",
    [
        lambda s: s["outcomes"][0].__setitem__(0, int(T0)),  # an int time
        lambda s: s["outcomes"][0].__setitem__(1, None),  # not a str
        lambda s: s["outcomes"][0].__setitem__(3, True),  # a bool reward
        lambda s: s["outcomes"][0].__setitem__(3, 2**40),  # an int past 2^31
        lambda s: s["outcomes"][0].append(1.0),  # five fields: Python raises
        lambda s: s["outcome_totals"]["v"].__setitem__(1, [1, 1.0]),  # a key not a str
        lambda s: s["outcome_totals"]["v"].__setitem__("a", [1]),  # no sum
        lambda s: s["outcome_totals"]["v"].__setitem__("a", [float("inf"), 1.0]),  # int() raises
        lambda s: s.__setitem__("outcomes", type("L", (list,), {})(s["outcomes"])),
    ],
    ids=[
        "int time",
        "none variant",
        "bool reward",
        "big int",
        "five fields",
        "int key",
        "short total",
        "infinite count",
        "list subclass",
    ],  # fmt: skip
)
def test_a_value_the_worker_does_not_write_is_left_to_python(change: object) -> None:
    state = {
        "outcomes": [[T0 - 60.0, "a", "kb-1", 1.0], [T0 - 30.0, "b", "", 0.5]],
        "outcome_totals": {"v": {"c": [2, 1.0]}, "a": {}},
    }
    change(state)  # type: ignore[operator]
    assert _compiled(state, T0) is None
    try:  # and the view answers as Python does, or raises as it does
        want: object = memory_in_python(state["outcomes"], state["outcome_totals"], T0)
    except (TypeError, ValueError, OverflowError, IndexError) as exc:
        with pytest.raises(type(exc)):
            memory_view(state, T0)
    else:
        assert repr(memory_view(state, T0)) == repr(
            {"variant_rewards": want[0], "article_rewards": want[1]}  # type: ignore[index]
        )


@needs_build
def test_an_int_now_is_left_to_python_and_the_view_still_answers() -> None:
    state = {"outcomes": [[T0 - 60.0, "a", "kb-1", 1.0]], "outcome_totals": {"v": {}, "a": {}}}
    assert _compiled(state, int(T0)) is None
    assert memory_view(state, int(T0))["variant_rewards"]["a"]["n"] == 1


def test_the_view_is_the_same_without_the_build(monkeypatch: pytest.MonkeyPatch) -> None:
    """Where the extension is missing (or older, without the pass), the Python pass serves."""
    state = {
        "outcomes": [[T0 - DAY, "a", "kb-1", 1.0], [T0 - 60 * DAY, "b", "kb-1", 0.0]],
        "outcome_totals": {"v": {"a": [3, 1.5]}, "a": {}},
    }
    built = memory_view(state, T0)
    monkeypatch.setattr(memory_module, "native", lambda: None)
    python = memory_view(state, T0)
    assert repr(python) == repr(built)
    assert (
        python["variant_rewards"]["a"]["n"] == 4
        and python["variant_rewards"]["b"]["recent_mean"] is None
    )
    assert python["article_rewards"]["kb-1"]["mean"] == 0.5


@needs_build
@pytest.mark.parametrize("threshold", [1, 2, 3, 4, 5])  # 1, 2: before the call; 3 on: in it
def test_a_collection_that_changes_the_state_mid_pass_leaves_it_sound(threshold: int) -> None:
    """An allocation in the pass may start a collection, whose callbacks run Python code that
    may change the state: the pass read every value first and holds its keys, so it answers
    what it read, and never from freed memory: the state's values before the change, or
    (where the collection came before the call) the emptied state's."""
    outcomes = [
        [T0 - i, f"variant-{i % 7}-" + "x" * 40, f"kb-{i % 5}-" + "y" * 40, 1.0] for i in range(100)
    ]
    totals = {"v": {f"folded-{i}-" + "z" * 40: [1, 1.0] for i in range(20)}, "a": {}}
    want = memory_in_python([list(o) for o in outcomes], {"v": dict(totals["v"]), "a": {}}, T0)
    armed = [True]

    def callback(phase: str, info: dict) -> None:
        if phase == "start" and armed[0]:
            armed[0] = False
            outcomes.clear()
            totals["v"].clear()

    gc.collect()
    old = gc.get_threshold()
    gc.callbacks.append(callback)
    try:
        gc.set_threshold(threshold)
        got = compiled(outcomes, totals["v"], totals["a"], T0, T0 - RETENTION_S, DECAY_PER_S)
    finally:
        gc.set_threshold(*old)
        gc.callbacks.remove(callback)
    assert repr(got) in (repr(want), repr(({}, {})))
