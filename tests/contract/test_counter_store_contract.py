"""The CounterStore contract: every backend in STORE_FACTORIES must pass all of it."""

from __future__ import annotations

import pytest

from tailorbot.store.base import CounterStore, FeedbackMark
from tests.contract.conftest import StoreOpener, record, run_threads

# Counters whose sums a 17-decimal fixed-point result (Redis's HINCRBYFLOAT) does not keep.
FINE = {"tiny": 1e-20, "small": 1.23456789e-10, "huge": 1e20, "tenth": 0.1}


def test_counters_add_up_per_namespace(counter_store: CounterStore) -> None:
    assert counter_store.counters("bandit") == {}
    counter_store.increment("bandit", {"a": 1.0, "b": 0.5})
    counter_store.increment("bandit", {"a": 2.0, "b": -0.25})
    counter_store.increment("other", {"a": 10})
    counter_store.increment("bandit", {})
    assert counter_store.counters("bandit") == {"a": 3.0, "b": 0.25}
    assert counter_store.counters("other") == {"a": 10.0}


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_deltas_are_refused_whole(counter_store: CounterStore, bad: float) -> None:
    counter_store.increment("bandit", {"a": 1.0})
    with pytest.raises(ValueError, match=r"finite.*\['b'\]"):
        counter_store.increment("bandit", {"a": 1.0, "b": bad})
    assert counter_store.counters("bandit") == {"a": 1.0}


def test_every_write_path_adds_as_doubles(open_online_stores: StoreOpener) -> None:
    """An increment, a feedback's mark and a record's events each add their counters as
    Python adds doubles: every digit of a tiny or a huge counter is kept."""
    stores = open_online_stores()
    stores.decisions.put("d1", "u1", {"variant": "short"})
    stores.counters.increment("fine", FINE)
    stores.decisions.record_feedbacks([FeedbackMark("d1", {"rating": 5}, {"fine": FINE})])
    stores.features.put_many([record("u1", offset=1)], {"u1": [(1, {"fine": FINE})]})
    assert stores.counters.counters("fine") == {n: v + v + v for n, v in FINE.items()}


def test_concurrent_increments_lose_nothing(open_online_stores: StoreOpener) -> None:
    # Half the threads share one client (a server's thread pool), half use a second one
    # (another process).
    stores = [open_online_stores().counters, open_online_stores().counters]

    def work(i: int) -> None:
        for _ in range(50):
            stores[i % 2].increment("stats", {"hits": 1.0, f"thread-{i}": 0.5})

    run_threads(8, work)
    expected = {"hits": 400.0} | {f"thread-{i}": 25.0 for i in range(8)}
    assert stores[0].counters("stats") == expected
    assert stores[1].counters("stats") == expected


def test_ping_answers_when_the_store_is_up(counter_store: CounterStore) -> None:
    counter_store.ping()
