"""The shared recommenders' refresh: a read only when the counters' stamps moved, new
statistics only when the counters changed, keeping the answers that the change did not
touch."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import pytest

from tailorbot.kb import default_kb_dir, load_kb
from tailorbot.models.recommend.collaborative import (
    NAMESPACES,
    NS_COOC,
    NS_INTENT,
    NS_SEGMENT_INTENT,
    CollaborativeStats,
)
from tailorbot.services.decisions.recommenders import SharedRecommenders
from tailorbot.store import Stores, open_stores
from tests.contract.conftest import STORE_FACTORIES
from tests.helpers import CountedReads


def test_refresh_rebuilds_the_statistics_only_when_the_counters_changed(tmp_path: Path) -> None:
    stores = open_stores(f"sqlite:///{tmp_path / 'store.db'}")
    try:
        shared = SharedRecommenders(load_kb(default_kb_dir()), stores.counters)
        shared.refresh()
        first = shared._personalized.stats
        shared.refresh()
        assert shared._personalized.stats is first  # same counters: kept, with what it remembers

        stores.counters.increment(
            NS_INTENT, {"change_pin|issues": 2.0, "change_pin|kb-pin|res": 1.0}
        )
        shared.refresh()
        served = shared._personalized.stats
        untouched = served.evidence("change_pin", [])
        touched = served.evidence("card_arrival", [])
        stores.counters.increment(NS_INTENT, {"card_arrival|kb-card-delivery|shown": 1.0})
        shared.refresh()
        rebuilt = shared._personalized.stats
        assert rebuilt is not served
        assert rebuilt._raw[NS_INTENT]["card_arrival|kb-card-delivery|shown"] == 1.0
        # what the new counters do not touch is carried over; the rest is computed again
        assert rebuilt.evidence("change_pin", []) is untouched
        assert rebuilt.evidence("card_arrival", []) is not touched
        assert shared._control.stats is rebuilt
    finally:
        stores.close()


@pytest.fixture(params=sorted(STORE_FACTORIES))
def stores(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Stores]:
    """Each backend of the store contracts."""
    opened = STORE_FACTORIES[request.param](request, tmp_path)()
    yield opened
    opened.close()


def test_refresh_reads_the_counters_only_when_their_stamps_moved(stores: Stores) -> None:
    counted = CountedReads(stores.counters)
    shared = SharedRecommenders(load_kb(default_kb_dir()), counted)
    shared.refresh()
    assert counted.reads == len(NAMESPACES)
    first = shared._personalized.stats
    shared.refresh()
    assert counted.reads == len(NAMESPACES), "nothing changed: no read"
    stores.counters.increment(NS_COOC, {"kb-pin": 1.0})  # another process's write
    shared.refresh()
    assert counted.reads == 2 * len(NAMESPACES)
    assert shared._personalized.stats is not first
    assert shared._personalized.stats._raw[NS_COOC]["kb-pin"] == 1.0
    # a store that keeps no stamps is read every time, as before stamps
    unstamped = CountedReads(stores.counters, stamped=False)
    plain = SharedRecommenders(load_kb(default_kb_dir()), unstamped)
    plain.refresh()
    plain.refresh()
    assert unstamped.reads == 2 * len(NAMESPACES)


def test_statistics_refreshed_second_by_second_equal_a_fresh_load(stores: Stores) -> None:
    """Second by second, with writes from other processes in between (some seconds none,
    and one with a counter that fell, which the served statistics cannot grow into), the
    statistics the refresh serves equal statistics loaded afresh from the counters."""
    shared = SharedRecommenders(load_kb(default_kb_dir()), stores.counters)
    shared.refresh()
    rng = random.Random(5)
    keys = {
        NS_INTENT: ["card_arrival|issues", "card_arrival|kb-card-delivery|res",
                    "change_pin|kb-pin|up"],
        NS_SEGMENT_INTENT: ["tier=gold|card_arrival|issues",
                            "tier=gold|card_arrival|kb-card-delivery|res"],
        NS_COOC: ["kb-pin", "kb-card-delivery", "kb-card-delivery|kb-pin"],
    }  # fmt: skip
    for second in range(12):
        for namespace in rng.sample(list(keys), rng.choice([0, 1, 2, 3])):
            picked = rng.sample(keys[namespace], rng.choice([1, 2]))
            stores.counters.increment(namespace, {key: 1.0 for key in picked})
        if second == 8:  # a negative delta: built from scratch
            stores.counters.increment(NS_INTENT, {"card_arrival|issues": -3.0})
        shared.refresh()
        fresh = CollaborativeStats.load(stores.counters)
        assert shared._personalized.stats.to_counters() == fresh.to_counters(), second
        for group in ([], [("tier", "gold")]):
            assert shared._personalized.stats.evidence("card_arrival", group) == (
                fresh.evidence("card_arrival", group)
            )


def test_the_control_ranks_with_what_every_customer_shares_and_nothing_personal(
    tmp_path: Path,
) -> None:
    stores = open_stores(f"sqlite:///{tmp_path / 'store.db'}")
    try:
        shared = SharedRecommenders(load_kb(default_kb_dir()), stores.counters)
        # Over all customers, one off-topic article resolved most card_arrival issues.
        stores.counters.increment(
            NS_INTENT,
            {"card_arrival|issues": 40.0, "card_arrival|kb-pin-blocked|res": 30.0},
        )
        shared.refresh()
        view = {"recent_articles_helpful": ["kb-atm-support"], "segment": "new"}
        ask = {"message": "my card has not arrived", "intent": "card_arrival",
               "confidence": 0.9, "k": 5}  # fmt: skip
        control = {r.article_id: r for r in shared.recommend(view, **ask, personalized=False)}
        assert "segment_resolution_rate" in control["kb-pin-blocked"].signals  # over everyone
        signals = {name for r in control.values() for name in r.signals}
        assert not signals & {"history", "cooccurrence", "item_knn"}  # nothing of this user
    finally:
        stores.close()
