"""The FeatureStore contract: every backend in STORE_FACTORIES must pass all of it."""

from __future__ import annotations

import math
import time

from tailorbot.store.base import (
    UNCHANGED,
    DedupeDelta,
    Erasure,
    FeatureRecord,
    FeatureStore,
    Stores,
)
from tailorbot.store.state_blob import APART_AT
from tests.contract.conftest import StoreOpener, record


def test_get_returns_the_record_as_put(feature_store: FeatureStore) -> None:
    assert feature_store.get("u1") is None
    put = FeatureRecord(
        "u1",
        {"messages": 3, "intents": ["card_lost", "pin"], "csat": {"ewma": 0.75}},
        partition=2,
        offset=7,
        event_time=1_700_000_000.5,
        updated_at=1_700_000_001.25,
        version=2,
    )
    feature_store.put_many([put])
    assert feature_store.get("u1") == put
    feature_store.put_many([])


def test_writes_are_fenced_by_offset(feature_store: FeatureStore) -> None:
    assert feature_store.put_many([record("u1", 5, mark="five")]) == {"u1"}
    assert feature_store.put_many([record("u1", 3, mark="three")]) == set()  # older: ignored
    assert feature_store.put_many([record("u1", 5, mark="again")]) == set()  # not newer
    assert feature_store.get("u1").state == {"mark": "five"}
    assert feature_store.put_many([record("u1", 6, mark="six"), record("u2", 1)]) == {"u1", "u2"}
    assert feature_store.put_many([record("u1", 6), record("u4", 2)]) == {"u4"}
    assert feature_store.get("u1").state == {"mark": "six"}
    assert feature_store.get("u2").offset == 1
    feature_store.put_many([record("u3", 2, mark="two"), record("u3", 1, mark="one")])
    assert feature_store.get("u3").state == {"mark": "two"}


def test_get_many_returns_the_stored_ones(feature_store: FeatureStore) -> None:
    feature_store.put_many([record("u1", 1, n=1), record("u2", 2, n=2), record("u3", 3, n=3)])
    got = feature_store.get_many(["u1", "missing", "u3", "u1"])
    assert sorted(got) == ["u1", "u3"]
    assert got["u3"] == feature_store.get("u3")
    assert feature_store.get_many([]) == {}


def test_callers_may_mutate_what_they_read(feature_store: FeatureStore) -> None:
    feature_store.put_many([record("u1", 1, intents=["a"])])
    for _ in range(2):  # the second round reads whatever a cache kept
        feature_store.get("u1").state["intents"].append("mutated")
        feature_store.get_many(["u1"])["u1"].state["extra"] = True
    assert feature_store.get("u1").state == {"intents": ["a"]}


def test_a_second_handle_sees_every_write_at_once(open_online_stores: StoreOpener) -> None:
    reader, writer = open_online_stores().features, open_online_stores().features
    writer.put_many([record("u1", 1, mark="first")])
    assert reader.get("u1").state == {"mark": "first"}  # read, and possibly cached now
    assert reader.get_many(["u2"]) == {}  # an absent user, possibly cached as absent
    writer.put_many([record("u1", 2, mark="second"), record("u2", 1)])
    assert reader.get("u1").state == {"mark": "second"}
    assert reader.get_many(["u2"]).keys() == {"u2"}
    writer.erase("u1", partition=0, watermark=3)
    assert reader.get("u1") is None
    assert reader.erasures(["u1"])["u1"].watermark == 3


def test_erasure_forgets_the_user_and_keeps_a_watermark(feature_store: FeatureStore) -> None:
    feature_store.put_many([record("victim", 4, partition=1), record("bystander", 4, partition=1)])
    assert feature_store.get("victim") is not None  # (and now possibly cached)

    feature_store.erase("victim", partition=1, watermark=9)
    assert feature_store.get("victim") is None
    assert feature_store.get_many(["victim"]) == {}
    assert feature_store.get("bystander").offset == 4
    erasures = feature_store.erasures(["victim", "bystander", "nobody"])
    assert erasures.keys() == {"victim"} and erasures["victim"].watermark == 9
    assert feature_store.erasures([]) == {}

    # An in-flight write from before the erasure cannot bring the user back ...
    feature_store.put_many([record("victim", 8, partition=1, stale=True)])
    assert feature_store.get("victim") is None
    # ... but events from the watermark on build a new record.
    feature_store.put_many([record("victim", 9, partition=1, fresh=True)])
    assert feature_store.get("victim").state == {"fresh": True}


def test_a_second_erasure_never_lowers_the_watermark(feature_store: FeatureStore) -> None:
    feature_store.erase("u1", partition=0, watermark=10)
    feature_store.erase("u1", partition=0, watermark=4)
    assert feature_store.erasures(["u1"])["u1"].watermark == 10
    feature_store.put_many([record("u1", 7, stale=True)])
    assert feature_store.get("u1") is None


def test_ping_answers_when_the_store_is_up(feature_store: FeatureStore) -> None:
    feature_store.ping()


def test_counters_ride_with_their_record_once(open_online_stores: StoreOpener) -> None:
    """Increments of a record's events are added with it, only for events after the offset
    the store held; a record the fence skips adds nothing (a partition hand-over)."""
    stores = open_online_stores()
    one = {"ns": {"views": 1.0}}
    stores.features.put_many([record("u1", offset=5)], {"u1": [(3, one), (5, one)]})
    assert stores.counters.counters("ns") == {"views": 2.0}
    # a stale owner rewrites up to 5: skipped by the fence, nothing added
    stores.features.put_many([record("u1", offset=5)], {"u1": [(3, one), (5, one)]})
    # the new owner read the state before offset 5 and goes on to 8: only 6 and 8 count
    stores.features.put_many([record("u1", offset=8)], {"u1": [(3, one), (6, one), (8, one)]})
    assert stores.counters.counters("ns") == {"views": 4.0}
    assert stores.features.get("u1").offset == 8
    # other users in the same call without increments are written as before
    stores.features.put_many([record("u2", offset=1), record("u1", offset=9)], {"u1": [(9, one)]})
    assert stores.features.get("u2") is not None
    assert stores.counters.counters("ns") == {"views": 5.0}
    # a user given twice is written in turn, as in two calls: the second counts from the first
    twice = {"u3": [(3, one), (6, one)]}
    stores.features.put_many([record("u3", offset=5), record("u3", offset=7)], twice)
    assert stores.counters.counters("ns") == {"views": 8.0}  # 3 and 6, then 6 again


def test_an_erasure_keeps_its_time_which_only_grows(open_online_stores: StoreOpener) -> None:
    """The erasure's time, beside its watermark: events dated before it are dropped even
    above the watermark (made before the erasure, appended after it)."""
    store, other = open_online_stores().features, open_online_stores().features
    started = time.time()
    store.erase("now", partition=0, watermark=2)
    erasure = other.erasures(["now", "nobody"])["now"]
    assert erasure.watermark == 2 and started <= erasure.erased_at <= time.time()
    store.erase("u1", partition=1, watermark=5, erased_at=1_700_000_100.25)
    store.erase("u1", partition=1, watermark=3, erased_at=1_700_000_000.0)  # an older one
    assert other.erasures(["u1", "nobody"]) == {"u1": Erasure(5, 1_700_000_100.25)}
    assert other.erasures([]) == {}
    erasure = other.erasures(["u1"])["u1"]
    assert erasure.drops(4, 1_700_000_200.0) and erasure.drops(7, 1_700_000_100.0)
    assert not erasure.drops(5, 1_700_000_100.25)


def test_a_decisions_read_leaves_the_dedupe_ids_out(online_stores: Stores) -> None:
    """The worker's reads keep a state whole; a decision's (``profile_and_record``) leaves
    the ``seen`` map out, the part of a state no feature reads (store/state_blob.py)."""
    state = {"n": 2, "seen": {"e1": 1.0, "e2": 2.0}, "ts": [1.0, 2.0], "sessions": {}}
    put = FeatureRecord("u1", state, partition=1, offset=4, event_time=2.0, updated_at=3.0)
    online_stores.features.put_many([put])
    assert online_stores.features.get("u1") == put
    assert online_stores.features.get_many(["u1"])["u1"].state == state
    profile, served = online_stores.profile_and_record("u1")
    assert profile is None and served is not None
    assert served.state == {"n": 2, "ts": [1.0, 2.0], "sessions": {}}
    assert (served.partition, served.offset, served.event_time, served.updated_at) == (
        1,
        4,
        2.0,
        3.0,
    )


MANY = {f"old-{i}": float(i) for i in range(APART_AT)}  # enough ids to be kept apart


def _with_ids(
    user: str, offset: int, ids: dict[str, float], dedupe: DedupeDelta | None = None
) -> FeatureRecord:
    put = record(user, offset, n=offset, seen=dict(ids))
    put.dedupe = dedupe
    return put


def _ids(feature_store: FeatureStore, user: str, apart: bool = True) -> dict[str, float]:
    """The user's dedupe ids as the worker reads them (asserting whether they are apart)."""
    got = feature_store.get(user)
    assert got is not None and got.dedupe == (UNCHANGED if apart else None)
    assert feature_store.get_many([user])[user].state["seen"] == got.state["seen"]
    return dict(got.state["seen"])


def test_a_few_dedupe_ids_stay_in_the_record_and_many_go_apart(
    online_stores: Stores,
) -> None:
    features, few = online_stores.features, {"a": 1.5, "b": 2.0}
    features.put_many([_with_ids("u1", 1, few)])
    assert _ids(features, "u1", apart=False) == few
    features.put_many([_with_ids("u1", 2, {**few, **MANY})])
    assert _ids(features, "u1") == {**few, **MANY}
    # once apart, they stay apart, however few are left
    features.put_many([_with_ids("u1", 3, {"z": 1e9}, DedupeDelta({"z": 1e9}, floor=1e9))])
    assert _ids(features, "u1") == {"z": 1e9}
    for read in (online_stores.profile_and_record("u1")[1], features.get("u1")):
        assert read is not None and read.state["n"] == 3  # the record and its ids agree


def test_a_write_adds_its_dedupe_ids_and_drops_those_below_its_floor(
    feature_store: FeatureStore,
) -> None:
    """A write with a :class:`DedupeDelta` changes only what it names; one without replaces
    the ids whole; a skipped write (older, or erased) changes none."""
    feature_store.put_many([_with_ids("u1", 1, MANY)])  # none before: all of them
    assert _ids(feature_store, "u1") == MANY
    # a delta: "d" added; the state forgot the ids below its oldest one left (100.0)
    state_ids = {**{e: t for e, t in MANY.items() if t >= 100.0}, "d": 1_767_261_600.123456}
    delta = DedupeDelta({"d": 1_767_261_600.123456}, floor=100.0)
    feature_store.put_many([_with_ids("u1", 2, state_ids, delta)])
    assert _ids(feature_store, "u1") == state_ids  # exact times, as floats
    # a delta alone is what the store applies: the ids it names, nothing else of the state
    feature_store.put_many([_with_ids("u1", 3, {"zzz": 9.0}, DedupeDelta({"e": 4.0}))])
    assert _ids(feature_store, "u1") == {**state_ids, "e": 4.0}
    # older, or not newer: the fence skips the ids with the record
    feature_store.put_many([_with_ids("u1", 3, {"x": 5.0}, DedupeDelta({"x": 5.0}, 1e12))])
    assert _ids(feature_store, "u1") == {**state_ids, "e": 4.0}
    # no delta: the state's ids replace the stored ones; a floor of inf drops them all
    other = {f"new-{i}": 1e6 + i for i in range(APART_AT)}
    feature_store.put_many([_with_ids("u1", 4, other)])
    assert _ids(feature_store, "u1") == other
    feature_store.put_many([_with_ids("u1", 5, {}, DedupeDelta({}, math.inf))])
    assert _ids(feature_store, "u1") == {}
    # a user given twice in one call is written in turn, as in two calls
    feature_store.put_many(
        [_with_ids("u2", 1, MANY), _with_ids("u2", 2, {}, DedupeDelta({"new": 1e9}))]
    )
    assert _ids(feature_store, "u2") == {**MANY, "new": 1e9}
    feature_store.put_many([_with_ids("u3", 2, MANY), _with_ids("u3", 1, other)])
    assert _ids(feature_store, "u3") == MANY and feature_store.get("u3").offset == 2  # type: ignore[union-attr]


def test_erasure_forgets_the_dedupe_ids_too(open_online_stores: StoreOpener) -> None:
    stores = open_online_stores()
    features, one = stores.features, {"ns": {"views": 1.0}}
    features.put_many([_with_ids("u1", 1, MANY)])
    # a counted write carries its ids in the same atomic step
    features.put_many([_with_ids("u1", 2, {}, DedupeDelta({"b": 1e9}))], {"u1": [(2, one)]})
    assert _ids(features, "u1") == {**MANY, "b": 1e9}
    features.erase("u1", partition=0, watermark=3)
    # refused below the watermark, counted or not: no id comes back
    features.put_many([_with_ids("u1", 2, {}, DedupeDelta({"c": 3.0}))])
    features.put_many([_with_ids("u1", 2, MANY)], {"u1": [(2, one)]})
    assert features.get("u1") is None
    # the user's first events after it start from nothing (a delta on nothing adds to it)
    features.put_many([_with_ids("u1", 3, {}, DedupeDelta({"d": 4.0}))])
    assert _ids(features, "u1") == {"d": 4.0}
    assert stores.counters.counters("ns") == {"views": 1.0}
