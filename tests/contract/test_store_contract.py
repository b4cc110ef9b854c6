"""The online-store contract: every backend in STORE_FACTORIES must pass all of it."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest

from tailorbot.store.base import FeatureRecord, OnlineStore
from tests.contract.conftest import StoreOpener


def record(user_id: str, offset: int, partition: int = 0, **state: object) -> FeatureRecord:
    event_time = 1_700_000_000.0 + offset
    return FeatureRecord(user_id, dict(state), partition, offset, event_time, time.time())


def run_threads(count: int, work: Callable[[int], None]) -> None:
    threads = [threading.Thread(target=work, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def test_get_returns_the_record_as_put(online_store: OnlineStore) -> None:
    assert online_store.get("u1") is None
    put = FeatureRecord(
        "u1", {"messages": 3, "intents": ["card_lost", "pin"], "csat": {"ewma": 0.75}},
        partition=2, offset=7, event_time=1_700_000_000.5, updated_at=1_700_000_001.25, version=2,
    )
    online_store.put_many([put])
    assert online_store.get("u1") == put
    online_store.put_many([])


def test_writes_are_fenced_by_offset(online_store: OnlineStore) -> None:
    online_store.put_many([record("u1", 5, seen="five")])
    online_store.put_many([record("u1", 3, seen="three")])  # older: ignored
    online_store.put_many([record("u1", 5, seen="again")])  # not newer: ignored
    assert online_store.get("u1").state == {"seen": "five"}
    online_store.put_many([record("u1", 6, seen="six"), record("u2", 1)])
    assert online_store.get("u1").state == {"seen": "six"}
    assert online_store.get("u2").offset == 1
    online_store.put_many([record("u3", 2, seen="two"), record("u3", 1, seen="one")])
    assert online_store.get("u3").state == {"seen": "two"}


def test_get_many_returns_the_stored_ones(online_store: OnlineStore) -> None:
    online_store.put_many([record("u1", 1, n=1), record("u2", 2, n=2), record("u3", 3, n=3)])
    got = online_store.get_many(["u1", "missing", "u3", "u1"])
    assert sorted(got) == ["u1", "u3"]
    assert got["u3"] == online_store.get("u3")
    assert online_store.get_many([]) == {}


def test_callers_may_mutate_what_they_read(online_store: OnlineStore) -> None:
    online_store.put_many([record("u1", 1, intents=["a"])])
    online_store.put_profile("u1", {"tier": "gold"})
    for _ in range(2):  # the second round reads whatever a cache kept
        online_store.get("u1").state["intents"].append("mutated")
        online_store.get_many(["u1"])["u1"].state["extra"] = True
        online_store.get_profile("u1")["tier"] = "mutated"
        online_store.get_profiles(["u1"])["u1"]["extra"] = True
    assert online_store.get("u1").state == {"intents": ["a"]}
    assert online_store.get_profile("u1") == {"tier": "gold"}


def test_profiles_are_replaced_whole(online_store: OnlineStore) -> None:
    assert online_store.get_profile("u1") is None
    online_store.put_profile("u1", {"tier": "gold", "consent": {"personalization": False}})
    assert online_store.get_profile("u1") == {"tier": "gold", "consent": {"personalization": False}}
    online_store.put_profile("u1", {"tier": "standard"})
    online_store.put_profile("u2", {"language": "de"})
    assert online_store.get_profile("u1") == {"tier": "standard"}
    assert online_store.get_profiles(["u1", "u2", "nobody"]) == {
        "u1": {"tier": "standard"}, "u2": {"language": "de"},
    }


def test_decisions_take_feedback_once(online_store: OnlineStore) -> None:
    assert online_store.get_decision("d1") is None
    decision = {"variant": "short", "articles": ["a1", "a2"], "context": {"tier_gold": 1.0}}
    online_store.put_decision("d1", "u1", decision)
    assert online_store.get_decision("d1") == decision
    assert online_store.record_feedback("d1", {"rating": 5}) is True
    assert online_store.record_feedback("d1", {"rating": 1}) is False
    assert online_store.get_decision("d1") == {**decision, "feedback": {"rating": 5}}
    assert online_store.record_feedback("unknown", {"rating": 5}) is False


def test_racing_feedback_is_taken_exactly_once(open_online_store: StoreOpener) -> None:
    stores = [open_online_store(), open_online_store()]
    stores[0].put_decision("d1", "u1", {"variant": "short"})
    wins: list[bool] = []

    def give(i: int) -> None:
        wins.append(stores[i % 2].record_feedback("d1", {"rating": i}))

    run_threads(8, give)
    assert sorted(wins) == [False] * 7 + [True]


def test_counters_add_up_per_namespace(online_store: OnlineStore) -> None:
    assert online_store.counters("bandit") == {}
    online_store.increment("bandit", {"a": 1.0, "b": 0.5})
    online_store.increment("bandit", {"a": 2.0, "b": -0.25})
    online_store.increment("other", {"a": 10})
    online_store.increment("bandit", {})
    assert online_store.counters("bandit") == {"a": 3.0, "b": 0.25}
    assert online_store.counters("other") == {"a": 10.0}
    with pytest.raises(ValueError, match="finite"):
        online_store.increment("bandit", {"a": 1.0, "b": float("nan")})
    assert online_store.counters("bandit") == {"a": 3.0, "b": 0.25}


def test_concurrent_increments_lose_nothing(open_online_store: StoreOpener) -> None:
    # Half the threads share one client (a server's thread pool), half use a second one
    # (another process).
    stores = [open_online_store(), open_online_store()]

    def work(i: int) -> None:
        for _ in range(50):
            stores[i % 2].increment("stats", {"hits": 1.0, f"thread-{i}": 0.5})

    run_threads(8, work)
    expected = {"hits": 400.0} | {f"thread-{i}": 25.0 for i in range(8)}
    assert stores[0].counters("stats") == expected


def test_erasure_forgets_the_user_and_keeps_a_watermark(online_store: OnlineStore) -> None:
    online_store.put_many([record("victim", 4, partition=1), record("bystander", 4, partition=1)])
    online_store.put_profile("victim", {"tier": "gold"})
    online_store.put_profile("bystander", {"tier": "standard"})
    online_store.put_decision("dv", "victim", {"variant": "short"})
    online_store.put_decision("db", "bystander", {"variant": "long"})
    assert online_store.get("victim") is not None  # (and now possibly cached)

    online_store.erase_user("victim", partition=1, watermark=9)
    assert online_store.get("victim") is None
    assert online_store.get_many(["victim"]) == {}
    assert online_store.get_profile("victim") is None
    assert online_store.get_decision("dv") is None
    assert online_store.get("bystander").offset == 4
    assert online_store.get_profile("bystander") == {"tier": "standard"}
    assert online_store.get_decision("db") == {"variant": "long"}
    assert online_store.erasure_watermarks(["victim", "bystander", "nobody"]) == {"victim": 9}
    assert online_store.erasure_watermarks([]) == {}

    # An in-flight write from before the erasure cannot bring the user back ...
    online_store.put_many([record("victim", 8, partition=1, stale=True)])
    assert online_store.get("victim") is None
    # ... but events from the watermark on build a new record.
    online_store.put_many([record("victim", 9, partition=1, fresh=True)])
    assert online_store.get("victim").state == {"fresh": True}


def test_ping_answers_when_the_store_is_up(online_store: OnlineStore) -> None:
    online_store.ping()
