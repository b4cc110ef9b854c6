"""The CounterStore contract: every backend in STORE_FACTORIES must pass all of it."""

from __future__ import annotations

import pytest

from tailorbot.store.base import CounterStore, FeedbackMark, StoreError
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


def test_vectors_add_up_element_by_element(counter_store: CounterStore) -> None:
    assert counter_store.vectors("bandit") == {}
    counter_store.add_vectors("bandit", {"arm/a": [1.0, 0.5, -2.0], "arm/b": [3.0]})
    counter_store.add_vectors("bandit", {"arm/a": [0.1, 0.0, 2.0]})
    counter_store.add_vectors("other", {"arm/a": (7, 8)})
    counter_store.add_vectors("bandit", {})
    found = {name: vector.tolist() for name, vector in counter_store.vectors("bandit").items()}
    assert found == {"arm/a": [1.1, 0.5, 0.0], "arm/b": [3.0]}
    assert counter_store.vectors("other")["arm/a"].tolist() == [7.0, 8.0]
    assert counter_store.counters("bandit") == {}, "vectors are not counters"


@pytest.mark.parametrize(
    "bad",
    [[1.0, float("nan")], [float("inf")], [], [[1.0]], ["x"], ["1.5"], [10**400], None],
    ids=lambda bad: repr(bad)[:24],
)
def test_bad_vector_deltas_are_refused_whole(counter_store: CounterStore, bad: object) -> None:
    counter_store.add_vectors("bandit", {"arm/a": [1.0]})
    with pytest.raises(ValueError, match=r"vector deltas .*\['arm/b'\]"):
        counter_store.add_vectors("bandit", {"arm/a": [1.0], "arm/b": bad})  # type: ignore[dict-item]
    assert counter_store.vectors("bandit")["arm/a"].tolist() == [1.0]


def test_a_vector_delta_of_another_length_is_refused(open_online_stores: StoreOpener) -> None:
    """A delta that does not fit its stored vector is refused with nothing written, by an
    addition (ValueError) and by a feedback's mark (StoreError, as a failed write: the mark
    stays unwritten)."""
    stores = open_online_stores()
    stores.counters.add_vectors("bandit", {"arm/a": [1.0, 2.0]})
    with pytest.raises(ValueError, match=r"'arm/a' of .* 2 values.* 3"):
        stores.counters.add_vectors("bandit", {"arm/b": [1.0], "arm/a": [1.0, 2.0, 3.0]})
    stores.decisions.put("d1", "u1", {"variant": "short"})
    mark = FeedbackMark("d1", {"rating": 5}, {"n": {"x": 1.0}}, None, {"bandit": {"arm/a": [1.0]}})
    with pytest.raises(StoreError, match="arm/a"):
        stores.decisions.record_feedbacks([mark])
    assert {k: v.tolist() for k, v in stores.counters.vectors("bandit").items()} == {
        "arm/a": [1.0, 2.0]
    }
    assert stores.counters.counters("n") == {}
    assert "feedback" not in (stores.decisions.get("d1") or {})


def test_a_vector_sum_past_the_doubles_is_refused(counter_store: CounterStore) -> None:
    counter_store.add_vectors("bandit", {"arm/a": [1e308, 1.0]})
    with pytest.raises(ValueError, match="not finite"):
        counter_store.add_vectors("bandit", {"arm/a": [1e308, 1.0]})
    assert counter_store.vectors("bandit")["arm/a"].tolist() == [1e308, 1.0]


def test_feedback_marks_add_their_vectors_once_each(open_online_stores: StoreOpener) -> None:
    """Each taken mark adds its vectors, as doubles: every digit kept; a mark refused (given
    before) adds nothing; one call's marks are summed before the write."""
    stores = open_online_stores()
    for decision_id in ("d1", "d2", "d3"):
        stores.decisions.put(decision_id, "u1", {"variant": "short"})
    fine = list(FINE.values())
    vectors = {"bandit": {"arm/a": fine, "arm/b": [1.0]}}
    marks = [FeedbackMark(d, {"rating": 5}, None, None, vectors) for d in ("d1", "d2", "d1")]
    assert stores.decisions.record_feedbacks(marks) == [True, True, False]
    assert stores.decisions.record_feedback("d3", {"rating": 1}, None, None, vectors)
    assert not stores.decisions.record_feedback("d3", {"rating": 1}, None, None, vectors)
    found = {k: v.tolist() for k, v in stores.counters.vectors("bandit").items()}
    assert found == {"arm/a": [v + v + v for v in fine], "arm/b": [3.0]}


def test_concurrent_vector_additions_lose_nothing(open_online_stores: StoreOpener) -> None:
    stores = [open_online_stores().counters, open_online_stores().counters]

    def work(i: int) -> None:
        for _ in range(50):
            stores[i % 2].add_vectors("stats", {"all": [1.0, 0.5], f"thread-{i}": [2.0]})

    run_threads(8, work)
    for store in stores:
        found = {k: v.tolist() for k, v in store.vectors("stats").items()}
        assert found == {"all": [400.0, 200.0]} | {f"thread-{i}": [100.0] for i in range(8)}


def test_every_write_raises_the_stamps_of_what_it_adds_to(
    open_online_stores: StoreOpener,
) -> None:
    """A poller skips its read while the stamps of what it reads stay equal, so every write
    path that adds to a namespace's counters or vectors raises its stamps, in every process's
    view; reads, writes that add nothing and refused writes leave them as they were."""
    stores, other = open_online_stores(), open_online_stores().counters
    counters = stores.counters
    names = ("a", "b", "c", "d")
    for decision_id in ("d1", "d2"):
        stores.decisions.put(decision_id, "u1", {"variant": "short"})

    def refused() -> None:
        with pytest.raises(ValueError):
            counters.increment("a", {"x": float("nan")})
        with pytest.raises(ValueError):
            counters.add_vectors("b", {"v": [1.0, 2.0]})  # "v" holds one value by then

    writes = [
        ("an increment", lambda: counters.increment("a", {"x": 1.0}), {"a"}),
        ("an addition to vectors", lambda: counters.add_vectors("b", {"v": [1.0]}), {"b"}),
        (
            "a feedback's mark",
            lambda: stores.decisions.record_feedbacks(
                [FeedbackMark("d1", {"rating": 5}, {"c": {"x": 1.0}}, None, {"b": {"v": [1.0]}})]
            ),
            {"b", "c"},
        ),
        (
            "a record's events",
            lambda: stores.features.put_many(
                [record("u1", offset=1)], {"u1": [(1, {"d": {"x": 1.0}})]}
            ),
            {"d"},
        ),
        (
            "writes that add nothing",
            lambda: (
                counters.increment("a", {}),
                counters.add_vectors("b", {}),
                stores.features.put_many([record("u2", offset=1)]),
                stores.decisions.record_feedbacks([FeedbackMark("d2", {"rating": 5})]),
            ),
            set(),
        ),
        (
            "a mark given before",
            lambda: stores.decisions.record_feedbacks(
                [FeedbackMark("d1", {"rating": 1}, {"c": {"x": 1.0}})]
            ),
            set(),
        ),
        ("refused writes", refused, set()),
        ("reads", lambda: (counters.counters("a"), counters.vectors("b")), set()),
    ]
    assert counters.stamps(names) is not None, "every backend keeps stamps"
    for what, write, touched in writes:
        before = {ns: counters.stamps([ns]) for ns in names}
        write()
        after = {ns: counters.stamps([ns]) for ns in names}
        assert {ns for ns in names if after[ns] != before[ns]} == touched, what
        assert other.stamps(names) == counters.stamps(names), what
