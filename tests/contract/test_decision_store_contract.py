"""The DecisionStore contract: every backend in STORE_FACTORIES must pass all of it."""

from __future__ import annotations

import math
import time

import pytest

from tailorbot.store.base import DecisionStore, FeedbackMark, Stores
from tests.contract.conftest import StoreOpener, run_threads


def test_decisions_take_feedback_once(decision_store: DecisionStore) -> None:
    assert decision_store.get("d1") is None
    decision = {"variant": "short", "articles": ["a1", "a2"], "context": {"tier_gold": 1.0}}
    decision_store.put("d1", "u1", decision)
    assert decision_store.get("d1") == decision
    assert decision_store.record_feedback("d1", {"rating": 5}) is True
    assert decision_store.record_feedback("d1", {"rating": 1}) is False
    assert decision_store.get("d1") == {**decision, "feedback": {"rating": 5}}
    assert decision_store.record_feedback("unknown", {"rating": 5}) is False
    assert decision_store.get("unknown") is None


def test_racing_feedback_is_taken_exactly_once(open_online_stores: StoreOpener) -> None:
    stores = [open_online_stores().decisions, open_online_stores().decisions]
    stores[0].put("d1", "u1", {"variant": "short"})
    wins: list[bool] = []

    def give(i: int) -> None:
        wins.append(stores[i % 2].record_feedback("d1", {"rating": i}))

    run_threads(8, give)
    assert sorted(wins) == [False] * 7 + [True]


def test_a_mark_is_extended_only_from_the_mark_it_was_read_as(online_stores: Stores) -> None:
    decisions = online_stores.decisions
    decisions.put("d1", "u1", {"variant": "short"})
    first = {"clicked": "a1", "reward": 0.8}
    later = {**first, "rating": 4}
    increments = {"extend-exp": {"rating_n": 1.0}}
    assert decisions.record_feedback("d1", later, increments, previous=first) is False
    assert decisions.record_feedback("d1", first) is True
    assert decisions.record_feedback("d1", later, increments, previous={"x": 1}) is False
    assert decisions.record_feedback("d1", later, increments, previous=first) is True
    assert decisions.record_feedback("d1", later, increments, previous=first) is False
    assert decisions.get("d1") == {"variant": "short", "feedback": later}
    assert online_stores.counters.counters("extend-exp") == {"rating_n": 1.0}
    assert decisions.record_feedback("unknown", later, previous=first) is False


def test_many_marks_in_one_call_are_each_taken_as_alone(online_stores: Stores) -> None:
    """record_feedbacks: each mark as record_feedback would take it, in order, its counters
    only with it; a second first mark of one decision in the same call is refused."""
    decisions = online_stores.decisions
    for d in ("m1", "m2", "m3"):
        decisions.put(d, "u1", {"variant": "short"})
    assert decisions.record_feedback("m3", {"rating": 1})
    one = {"batch-exp": {"n": 1.0}}
    marks = [
        FeedbackMark("m1", {"rating": 5}, {"batch-exp": {"n": 1.0, "reward": 0.5}}),
        FeedbackMark("m1", {"rating": 2}, one),  # taken by the mark before it
        FeedbackMark("unknown", {"rating": 4}, one),
        FeedbackMark("m3", {"rating": 3}, one),  # marked before the call
        FeedbackMark(
            "m3",
            {"rating": 1, "resolved": True},
            {**one, "batch-arm": {"a/n": 1.0}},
            previous={"rating": 1},
        ),
        FeedbackMark("m2", {"clicked": "a1"}),
        FeedbackMark(
            "m2",
            {"clicked": "a1", "rating": 4},
            {"batch-arm": {"a/n": 1.0, "a/b/0": 0.25}, **one},  # the namespaces in another order
            previous={"clicked": "a1"},
        ),
    ]
    assert decisions.record_feedbacks(marks) == [True, False, False, False, True, True, True]
    assert decisions.get("m1") == {"variant": "short", "feedback": {"rating": 5}}
    assert decisions.get("m2") == {"variant": "short", "feedback": {"clicked": "a1", "rating": 4}}
    assert decisions.get("m3") == {"variant": "short", "feedback": {"rating": 1, "resolved": True}}
    assert online_stores.counters.counters("batch-exp") == {"n": 3.0, "reward": 0.5}
    assert online_stores.counters.counters("batch-arm") == {"a/n": 2.0, "a/b/0": 0.25}
    assert decisions.record_feedbacks([]) == []
    decisions.put("m4", "u1", {"variant": "short"})
    bad = [FeedbackMark("m4", {"rating": 5}, one), FeedbackMark("m1", {}, {"x": {"y": math.inf}})]
    with pytest.raises(ValueError, match="finite"):
        decisions.record_feedbacks(bad)
    assert decisions.get("m4") == {"variant": "short"}  # nothing written
    assert online_stores.counters.counters("batch-exp") == {"n": 3.0, "reward": 0.5}


def test_many_decisions_are_read_at_once_as_each_alone(decision_store: DecisionStore) -> None:
    decision_store.put("g1", "u1", {"variant": "short", "text": 'quote " and \\ é'})
    decision_store.put("g2", "u2", {"variant": "long", "n": 1e-7, "big": 2**53})
    decision_store.record_feedback("g2", {"rating": 4, "reward": 0.1})
    ids = ["g2", "missing", "g1", "g2"]
    assert decision_store.get_many(ids) == {d: decision_store.get(d) for d in ("g1", "g2")}
    assert decision_store.get_many([]) == {}


def test_racing_extensions_of_a_mark_are_taken_exactly_once(
    open_online_stores: StoreOpener,
) -> None:
    opened = [open_online_stores(), open_online_stores()]
    opened[0].decisions.put("d1", "u1", {"variant": "short"})
    first = {"clicked": "a1"}
    assert opened[0].decisions.record_feedback("d1", first)
    wins: list[bool] = []

    def extend(i: int) -> None:
        increments = {"race-exp": {"n": 1.0}}
        later = {**first, "rating": i}
        wins.append(opened[i % 2].decisions.record_feedback("d1", later, increments, first))

    run_threads(8, extend)
    assert sorted(wins) == [False] * 7 + [True]
    assert opened[0].counters.counters("race-exp") == {"n": 1.0}


def test_erase_user_deletes_every_decision_of_that_user(decision_store: DecisionStore) -> None:
    decision_store.put("dv1", "victim", {"variant": "short"})
    decision_store.put("dv2", "victim", {"variant": "long"})
    decision_store.record_feedback("dv1", {"rating": 2})
    decision_store.put("db", "bystander", {"variant": "long"})
    decision_store.erase_user("victim")
    decision_store.erase_user("nobody")
    assert decision_store.get("dv1") is None and decision_store.get("dv2") is None
    assert decision_store.record_feedback("dv2", {"rating": 5}) is False
    assert decision_store.get("db") == {"variant": "long"}
    decision_store.put("dv3", "victim", {"variant": "new"})  # the user may come back
    assert decision_store.get("dv3") == {"variant": "new"}


def test_ping_answers_when_the_store_is_up(decision_store: DecisionStore) -> None:
    decision_store.ping()


def test_scan_returns_every_decision_oldest_first_with_its_feedback(
    decision_store: DecisionStore,
) -> None:
    assert list(decision_store.scan()) == []
    decision_store.put("s1", "u1", {"variant": "short", "n": 1})
    time.sleep(0.01)
    middle = time.time()
    decision_store.put("s2", "u2", {"variant": "long", "n": 2})
    decision_store.put("s3", "u1", {"variant": "short", "n": 3})
    decision_store.record_feedback("s2", {"rating": 4})
    assert [d["n"] for d in decision_store.scan()] == [1, 2, 3]
    since = list(decision_store.scan(since=middle))
    assert [d["n"] for d in since] == [2, 3]
    assert since[0]["feedback"] == {"rating": 4} and "feedback" not in since[1]
    decision_store.erase_user("u1")
    assert [d["n"] for d in decision_store.scan()] == [2]


def test_feedback_and_its_counters_are_one_write(open_online_stores: StoreOpener) -> None:
    """Racing feedback with increments: the counters move exactly once, with the mark."""
    opened = [open_online_stores(), open_online_stores()]
    opened[0].decisions.put("d1", "u1", {"variant": "short"})
    increments = {"exp": {"personalized/feedback": 1.0, "personalized/reward_sum": 0.75}}
    wins: list[bool] = []

    def give(i: int) -> None:
        wins.append(opened[i % 2].decisions.record_feedback("d1", {"rating": i}, increments))

    run_threads(8, give)
    assert sorted(wins) == [False] * 7 + [True]
    assert opened[0].counters.counters("exp") == increments["exp"]
    assert not opened[0].decisions.record_feedback("unknown", {"rating": 1}, increments)
    assert opened[1].counters.counters("exp") == increments["exp"]
    with pytest.raises(ValueError, match="finite"):
        opened[0].decisions.put("d2", "u1", {"variant": "short"})
        opened[0].decisions.record_feedback("d2", {}, {"exp": {"x": float("nan")}})
    assert opened[0].decisions.get("d2") == {"variant": "short"}  # nothing marked


def test_a_decision_made_before_its_users_erasure_is_not_written(
    open_online_stores: StoreOpener,
) -> None:
    """A decision queued (in another process, say) while its user was erased: made before
    the erasure, written after it. The write refuses it; later decisions are written."""
    stores, other = open_online_stores(), open_online_stores()
    stores.features.erase("gone", partition=0, watermark=0, erased_at=1_700_000_100.0)
    # 1_700_000_000 is 2023-11-14T22:13:20Z: the erasure was 100 s later
    earlier = {"variant": "short", "created_at": "2023-11-14T22:13:19.500000Z"}
    after = {"variant": "long", "created_at": "2023-11-14T22:15:00.250000+00:00"}
    bystander = {"variant": "short", "created_at": "2023-11-14T22:13:10Z"}
    other.decisions.put_many(
        [("d-before", "gone", earlier), ("d-after", "gone", after), ("d-other", "kept", bystander)]
    )
    assert other.decisions.get("d-before") is None
    assert other.decisions.get("d-after") == after
    assert other.decisions.get("d-other") == bystander  # no erasure of that user
    other.decisions.put("d-untimed", "gone", {"variant": "short"})  # no time: not refused
    assert other.decisions.get("d-untimed") == {"variant": "short"}


def test_a_write_names_the_decisions_it_wrote(open_online_stores: StoreOpener) -> None:
    """What the store refused (made before its user's erasure) must not go on to the
    archive: ``put_many`` returns the ids it wrote, ``put`` whether it wrote."""
    stores = open_online_stores()
    stores.features.erase("gone", partition=0, watermark=0, erased_at=1_700_000_100.0)
    earlier = {"variant": "short", "created_at": "2023-11-14T22:13:19.500000Z"}
    after = {"variant": "long", "created_at": "2023-11-14T22:15:00.250000+00:00"}
    written = stores.decisions.put_many(
        [("w-before", "gone", earlier), ("w-after", "gone", after), ("w-other", "kept", earlier)]
    )
    assert written == {"w-after", "w-other"}
    assert stores.decisions.put_many([]) == set()
    assert stores.decisions.put("w-again", "gone", earlier) is False
    assert stores.decisions.put("w-later", "gone", after) is True
