from __future__ import annotations

import copy
import random

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tailorbot.config import Settings
from tailorbot.events.codec import event_epoch
from tailorbot.features import state as state_module
from tailorbot.features.params import RETENTION_S, FeatureParams
from tailorbot.features.sessions import LAST
from tailorbot.features.state import (
    APPLIED,
    DUPLICATE,
    LATE,
    apply_event,
    apply_outcome,
    cut_of,
    new_state,
    prune,
    recompute,
)
from tailorbot.features.view import feature_view
from tailorbot.store.base import FeatureRecord
from tests.stream.eventgen import DAY, T0, event_streams, make_event

PARAMS = FeatureParams(lateness_s=600.0, recent_intents=3, csat_ewma_alpha=0.3)


def view_of(state: dict, now: float) -> dict:
    return feature_view(FeatureRecord("u", state, 0, 0, 0.0, 0.0), None, now)


def roundtrip(state: dict) -> dict:
    """What the store does to a state between two batches."""
    return orjson.loads(orjson.dumps(state))


# --- idempotency and the late policy --------------------------------------------------------


def test_duplicate_is_not_applied_twice_and_leaves_state_unchanged() -> None:
    state = new_state()
    ev = make_event("rating", T0, event_id="e1", score=2)
    assert apply_outcome(state, ev, PARAMS) == APPLIED
    before = copy.deepcopy(state)
    assert apply_outcome(state, ev, PARAMS) == DUPLICATE
    assert apply_event(roundtrip(state), ev, PARAMS) is False
    assert state == before
    assert state["csat_n"] == 1 and state["n"] == 1


def test_apply_event_takes_settings_or_params() -> None:
    state = new_state()
    ev = make_event("message", T0, event_id="e1", intent="lost_card")
    assert apply_event(state, ev, Settings(recent_intents=1, csat_ewma_alpha=0.5)) is True
    assert state["alpha"] == 0.5


def test_event_at_or_below_the_cut_is_late_and_counted() -> None:
    state = new_state()
    apply_event(state, make_event("session_started", T0, event_id="new"), PARAMS)
    cut = T0 - RETENTION_S - PARAMS.lateness_s
    assert cut_of(state, PARAMS) == cut
    assert apply_outcome(state, make_event("rating", cut, event_id="at"), PARAMS) == LATE
    assert apply_outcome(state, make_event("rating", cut + 0.001, event_id="in"), PARAMS) == APPLIED
    assert state["late"] == 1
    assert view_of(state, T0)["late_events"] == 1
    assert state["csat_n"] == 1


def test_late_by_days_but_inside_retention_is_applied_exactly() -> None:
    """Order only matters past the cut: a rating 20 days behind still lands in its slot."""
    params = PARAMS
    times = [T0, T0 + 1 * DAY, T0 + 20 * DAY]
    ratings = [
        make_event("rating", t, event_id=f"r{i}", score=s)
        for i, (t, s) in enumerate(zip(times, (5, 1, 4), strict=True))
    ]
    in_order = recompute(ratings, params)
    out_of_order = new_state()
    for ev in reversed(ratings):
        assert apply_event(out_of_order, ev, params)
    assert view_of(out_of_order, T0 + 21 * DAY) == view_of(in_order, T0 + 21 * DAY)


def test_recompute_counts_a_repeated_event_id_once() -> None:
    ev = make_event("message", T0, event_id="e1")
    assert recompute([ev, ev, dict(ev)], PARAMS)["n_cm"] == 1


# --- bounded memory ---------------------------------------------------------------------------


def hourly_events(days: int) -> list[dict]:
    out = []
    for h in range(days * 24):
        t = T0 + h * 3600.0
        out.append(
            make_event("message", t, event_id=f"m{h}", session_id=f"s{h // 6}", intent="lost_card")
        )
        if h % 6 == 5:
            out.append(
                make_event(
                    "resolution",
                    t + 1,
                    event_id=f"r{h}",
                    session_id=f"s{h // 6}",
                    resolved=True,
                    article_id="kb-9",
                )
            )
    return out


def test_detail_is_kept_only_inside_the_retention_horizon() -> None:
    events = hourly_events(60)
    state = new_state()
    for ev in events:
        apply_event(state, ev, PARAMS)
    newest = state["newest"]
    keep_from = newest - PARAMS.horizon_s - state_module.PRUNE_EVERY_S
    assert min(state["ts"]) > keep_from
    assert len(state["seen"]) == len(state["ts"]) < len(events) / 1.5
    assert all(s[LAST] > keep_from for s in state["sessions"].values())
    # Folded sessions still count towards the resolved-article memory.
    view = view_of(state, newest)
    assert view["articles_resolved_by_intent"] == {"lost_card": ["kb-9"]}
    assert state["resolved"]["lost_card"]["kb-9"] > 0
    assert view["events_total"] == len(events)


def test_prune_never_changes_the_view() -> None:
    state = new_state()
    for ev in hourly_events(50):
        apply_event(state, ev, PARAMS)
        if random.Random(ev["event_id"]).random() < 0.05:
            before = view_of(state, state["newest"])
            prune(state, PARAMS)
            assert view_of(state, state["newest"]) == before


def test_hard_cap_raises_the_cut_and_keeps_exactly_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(state_module, "MAX_EVENTS", 50)
    events = [make_event("session_started", T0 + i, event_id=f"e{i}") for i in range(60)]
    state = new_state()
    for ev in events:
        apply_event(state, ev, PARAMS)
    assert len(state["ts"]) <= 50 and len(state["seen"]) == len(state["ts"])
    cut = cut_of(state, PARAMS)
    assert cut is not None and cut >= T0
    # An evicted event delivered again is not counted twice: it is below the cut now.
    assert apply_outcome(state, events[0], PARAMS) == LATE
    assert state["n"] == 60
    assert view_of(state, T0 + 100)["history_capped"] is True


def test_rating_cap_folds_oldest_ratings_into_the_ewma(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(state_module, "MAX_RATINGS", 20)
    events = [make_event("rating", T0 + i, event_id=f"r{i}", score=1 + i % 5) for i in range(30)]
    capped = recompute(events, PARAMS)
    monkeypatch.setattr(state_module, "MAX_RATINGS", 1000)
    uncapped = recompute(events, PARAMS)
    assert len(capped["ratings"]) <= 20 and capped["ewma"] is not None
    assert view_of(capped, T0 + 60)["csat_ewma"] == pytest.approx(
        view_of(uncapped, T0 + 60)["csat_ewma"], abs=1e-12
    )


def test_state_is_json_serializable() -> None:
    state = recompute(hourly_events(2), PARAMS)
    assert roundtrip(state) == state


# --- incremental == recompute -----------------------------------------------------------------


def by_user(events: list[dict]) -> dict[str, list[dict]]:
    users: dict[str, list[dict]] = {}
    for ev in events:
        users.setdefault(ev["user_id"], []).append(ev)
    return users


def apply_in_chunks(arrivals: list[dict], cuts: list[int], prune_between: bool) -> dict:
    states: dict[str, dict] = {}
    bounds = [0, *sorted(cuts), len(arrivals)]
    for lo, hi in zip(bounds, bounds[1:], strict=False):
        for ev in arrivals[lo:hi]:
            apply_event(states.setdefault(ev["user_id"], new_state()), ev, PARAMS)
        states = {u: roundtrip(s) for u, s in states.items()}
        if prune_between:
            for s in states.values():
                prune(s, PARAMS)
    return states


def assert_same_views(events: list[dict], states: dict, extra_nows: list[float]) -> None:
    for user, evs in by_user(events).items():
        expected = recompute(evs, PARAMS)
        newest = max(event_epoch(e) for e in evs)
        nows = [newest, newest - PARAMS.lateness_s, *[newest + x for x in extra_nows]]
        nows += [event_epoch(evs[0]) + w for w in (3600.0, DAY, 7 * DAY)]  # window edges
        for now in nows:
            assert view_of(states[user], now) == view_of(expected, now), (user, now)


def with_redeliveries(events: list[dict], data: st.DataObject) -> list[dict]:
    """``events`` plus up to 8 of them delivered again (equal copies)."""
    again = data.draw(st.lists(st.integers(0, len(events) - 1), max_size=8))
    return events + [dict(events[i]) for i in again]


@settings(max_examples=100, deadline=None)
@given(events=event_streams(span_days=45.0), data=st.data())
def test_shuffled_within_lateness_chunked_with_duplicates_equals_recompute(
    events: list[dict], data: st.DataObject
) -> None:
    copies = with_redeliveries(events, data)
    jitter = st.floats(0, PARAMS.lateness_s, allow_nan=False)
    delays = data.draw(st.lists(jitter, min_size=len(copies), max_size=len(copies)))
    keys = [event_epoch(e) + d for e, d in zip(copies, delays, strict=True)]
    arrivals = [e for _, _, e in sorted(zip(keys, range(len(copies)), copies, strict=True))]
    cuts = data.draw(st.lists(st.integers(0, len(arrivals)), max_size=5))
    states = apply_in_chunks(arrivals, cuts, data.draw(st.booleans()))
    assert_same_views(events, states, [data.draw(st.floats(0, 40 * DAY, allow_nan=False))])


@settings(max_examples=80, deadline=None)
@given(events=event_streams(span_days=29.0), data=st.data())
def test_any_arrival_order_inside_retention_equals_recompute(
    events: list[dict], data: st.DataObject
) -> None:
    copies = with_redeliveries(events, data)
    arrivals = data.draw(st.permutations(copies))
    cuts = data.draw(st.lists(st.integers(0, len(arrivals)), max_size=5))
    states = apply_in_chunks(arrivals, cuts, data.draw(st.booleans()))
    assert_same_views(events, states, [data.draw(st.floats(0, 40 * DAY, allow_nan=False))])


# --- per-customer memory ---------------------------------------------------------------------


def feedback(kind: str, ts: float, event_id: str, **fields: object) -> dict:
    return make_event(kind, ts, event_id=event_id, **fields)


def test_outcomes_count_per_variant_and_article_and_decay_with_age() -> None:
    meta = {"decision_id": "d1", "variant": "step_by_step", "article": "kb-2"}
    events = [
        feedback("rating", T0, "r1", score=5, metadata=meta),
        feedback("resolution", T0 + 1, "x1", resolved=False, metadata=meta),
        feedback("article_feedback", T0 + 2, "h1", article_id="kb-3", helpful=True),
        feedback("rating", T0 + 3, "r2", score=3),  # no decision behind it: no outcome
    ]
    state = recompute(events, PARAMS)
    view = view_of(state, T0 + 7 * DAY + 3)
    step = view["variant_rewards"]["step_by_step"]
    assert (step["n"], step["mean"]) == (2, 0.5)
    assert step["recent_weight"] == pytest.approx(2 * 0.5, rel=1e-4)  # a week old: half weight each
    assert step["recent_mean"] == pytest.approx(0.5)
    assert set(view["variant_rewards"]) == {"step_by_step"}
    assert view["article_rewards"]["kb-2"]["n"] == 2
    assert view["article_rewards"]["kb-3"] == {
        "n": 1,
        "mean": 1.0,
        "recent_weight": pytest.approx(0.5, rel=1e-4),
        "recent_mean": 1.0,
    }


def test_outcomes_past_the_retention_are_folded_into_all_time_totals() -> None:
    meta = {"variant": "concise"}
    events = [feedback("rating", T0, "r1", score=1, metadata=meta)]
    events += [feedback("rating", T0 + 40 * DAY, "r2", score=5, metadata=meta)]
    state = recompute(events, PARAMS)
    prune(state, PARAMS)
    assert len(state["outcomes"]) == 1 and state["outcome_totals"]["v"]["concise"] == [1, 0.0]
    concise = view_of(state, T0 + 40 * DAY)["variant_rewards"]["concise"]
    assert (concise["n"], concise["mean"], concise["recent_mean"]) == (2, 0.5, 1.0)


def test_a_state_written_before_the_memory_existed_still_reads_and_applies() -> None:
    old = new_state()
    del old["outcomes"], old["outcome_totals"]
    assert view_of(old, T0)["variant_rewards"] == {}
    apply_event(old, feedback("rating", T0, "r1", score=4, metadata={"variant": "x"}), PARAMS)
    assert view_of(old, T0)["variant_rewards"]["x"]["n"] == 1


def test_outcomes_past_the_cap_are_folded_and_still_counted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from tailorbot.features import memory

    monkeypatch.setattr(memory, "MAX_OUTCOMES", 3)
    state = new_state()
    for i in range(5):
        meta = {"variant": "concise"}
        apply_event(state, feedback("rating", T0 + i, f"r{i}", score=5, metadata=meta), PARAMS)
    assert len(state["outcomes"]) == 3 and state["outcome_totals"]["v"]["concise"] == [2, 2.0]
    concise = view_of(state, T0 + 5)["variant_rewards"]["concise"]
    assert concise["n"] == 5 and concise["recent_weight"] == pytest.approx(3.0, rel=1e-4)
