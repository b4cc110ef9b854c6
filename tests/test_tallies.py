"""The per-request Prometheus figures kept per thread (``_tallies.py``): the exposition is
prometheus_client's own for the same calls, and no count is lost to threads."""

from __future__ import annotations

import functools
import math
import re
import sys
import threading
from collections.abc import Callable
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    enable_created_metrics,
    generate_latest,
)
from prometheus_client.parser import text_string_to_metric_families

from tailorbot import _tallies as tallies
from tailorbot._tallies import TalliedCounter, TalliedHistogram

THREADS, ROUNDS = 4, 2000


def _exercised(counter: Callable[..., Any], histogram: Callable[..., Any]) -> str:
    """The exposition after the same calls, made from THREADS threads at once."""
    registry = CollectorRegistry()
    labelled = counter("tb_labelled", "Labelled", ["a", "b"], registry=registry)
    plain = counter("tb_plain", "Plain", registry=registry)
    sizes = histogram("tb_sizes", "Sizes", buckets=(16, 24, 32), registry=registry)
    latency = histogram(
        "tb_latency", "Latency", ["route"], registry=registry, buckets=(0.0005, 0.001, 2.5)
    )
    histogram("tb_unused", "Unused", buckets=(1.0,), registry=registry)
    counter("tb_unused_plain", "Unused", registry=registry)
    counter("tb_unused_labelled", "Unused", ["x"], registry=registry).labels(x="named")
    sizes.observe(float("nan"))  # in the sum alone
    start = threading.Barrier(THREADS)

    def work() -> None:
        start.wait()
        for i in range(ROUNDS):
            labelled.labels(a=str(i % 3), b="x").inc()
            labelled.labels(str(i % 2), "y").inc(2)
            plain.inc()
            sizes.observe(i % 40)  # whole numbers: sums exact in any order
            latency.labels(route=f"/r{i % 2}").observe(0.5 if i % 7 else 3)

    threads = [threading.Thread(target=work) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return generate_latest(registry).decode()


def _series(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample but the creation times (they differ): (name, labels) -> value."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if not s.name.endswith("_created")
    }


def _same(ours: dict[Any, float], theirs: dict[Any, float]) -> bool:
    return ours.keys() == theirs.keys() and all(
        ours[k] == theirs[k] or (math.isnan(ours[k]) and math.isnan(theirs[k])) for k in ours
    )


def test_the_exposition_is_prometheus_clients_and_no_count_is_lost() -> None:
    ours = _exercised(TalliedCounter, TalliedHistogram)
    theirs = _exercised(Counter, Histogram)
    assert _same(_series(ours), _series(theirs))
    assert _series(ours)[("tb_plain_total", ())] == THREADS * ROUNDS
    assert _series(ours)[("tb_unused_plain_total", ())] == 0
    # the same families, types and help, in the same order, with creation times
    heads = re.compile(r"^# (?:HELP|TYPE) .*$", re.MULTILINE)
    assert heads.findall(ours) == heads.findall(theirs)
    created = re.compile(r"^(\w+_created)(\{[^}]*\})? ", re.MULTILINE)
    assert created.findall(ours) == created.findall(theirs)


def test_without_created_series_when_prometheus_client_is_told_so() -> None:
    disable_created_metrics()
    try:
        ours = _exercised(TalliedCounter, TalliedHistogram)
        theirs = _exercised(Counter, Histogram)
    finally:
        enable_created_metrics()
    assert "_created" not in ours and "_created" not in theirs
    assert _same(_series(ours), _series(theirs))


def test_totals_read_while_threads_count_never_fall_and_end_exact() -> None:
    registry = CollectorRegistry()
    counter = TalliedCounter("tb_live", "Live", ["k"], registry=registry)
    sizes = TalliedHistogram("tb_live_sizes", "Sizes", buckets=(1.0,), registry=registry)

    read_midway = threading.Event()

    def work() -> None:
        child = counter.labels(k="a")
        for i in range(20_000):
            if i == 10_000:  # on a busy machine the threads could end before any read
                read_midway.wait(30.0)
            child.inc()
            sizes.observe(0.5)

    def read() -> tuple[float, float]:
        found = _series(generate_latest(registry).decode())
        return found.get(("tb_live_total", (("k", "a"),)), 0.0), found[("tb_live_sizes_count", ())]

    threads = [threading.Thread(target=work) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    seen = [(0.0, 0.0)]
    while any(thread.is_alive() for thread in threads):
        seen.append(read())
        if len(seen) > 3:
            read_midway.set()
    for thread in threads:
        thread.join()
    seen.append(read())
    assert all(b[0] >= a[0] and b[1] >= a[1] for a, b in zip(seen, seen[1:], strict=False))
    assert seen[-1] == (THREADS * 20_000, THREADS * 20_000)
    assert len(seen) > 3  # read while counting


def test_counts_of_threads_that_ended_stay_without_a_dict_each() -> None:
    """A pool's idle threads end and new ones start: their counts stay, their dicts go."""
    registry = CollectorRegistry()
    counter = TalliedCounter("tb_count", "Count", ["k"], registry=registry)
    counter.labels(k="a").inc()
    for _ in range(2):
        for _ in range(25):
            thread = threading.Thread(target=lambda: counter.labels(k="a").inc(5))
            thread.start()
            thread.join()
        assert counter.labels(k="a") is counter.labels("a")
        text = generate_latest(registry).decode()
    assert 'tb_count_total{k="a"} 251.0' in text
    assert len(counter._tally._threads) == 1  # this thread's; the 50 others' rows added up


def test_refusals_are_prometheus_clients() -> None:
    registry = CollectorRegistry()
    counter = TalliedCounter("tb_refused", "Refused", ["k"], registry=registry)
    with pytest.raises(ValueError, match="non-negative"):
        counter.labels(k="a").inc(-1)
    with pytest.raises(ValueError, match="label names"):
        counter.labels(other="a")
    with pytest.raises(ValueError, match="label values"):
        counter.labels("a", "b")
    with pytest.raises(ValueError, match="use labels"):
        counter.inc()
    with pytest.raises(ValueError, match="Duplicated timeseries"):
        TalliedCounter("tb_refused", "Again", registry=registry)
    with pytest.raises(ValueError, match="sorted order"):
        TalliedHistogram("tb_unsorted", "Unsorted", buckets=(2.0, 1.0))
    with pytest.raises(ValueError, match="finite bucket"):
        TalliedHistogram("tb_no_buckets", "None", buckets=(float("inf"),))


# --- the compiled children (csrc/tallies.c) against the Python ones -----------------------

AMOUNTS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.booleans(),
    st.fractions(max_denominator=7),
    st.decimals(allow_nan=False, places=2, min_value=-5, max_value=5),
)


def _python_children(monkeypatch: pytest.MonkeyPatch) -> None:
    """The children made from here on are the Python ones."""
    monkeypatch.setattr(tallies, "native", lambda: None)


def _outcome(call: Callable[[], Any]) -> Any:
    try:
        return call()
    except Exception as exc:  # noqa: BLE001 - the refusal itself is compared
        return (type(exc), str(exc))


def _rows(tally: Any) -> list[tuple[Any, list[float]]]:
    return [(key, [("nan" if v != v else v) for v in row]) for key, row in tally.summed().items()]


def test_the_project_s_children_are_compiled_where_it_is_built() -> None:
    if tallies.native() is None:
        pytest.skip("the extension is not built here (required under CI: test_native.py)")
    assert type(TalliedCounter("tb_c", "C", ["k"]).labels("a")).__name__ == "TallyCounter"
    assert type(TalliedHistogram("tb_h", "H", buckets=(1.0,))._unlabelled()).__name__ == (
        "TallyHistogram"
    )


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.tuples(st.sampled_from(["inc", "observe"]), st.sampled_from("ab"), AMOUNTS)),
    st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=6),
)
def test_compiled_children_count_as_the_python_ones(
    calls: list[tuple[str, str, Any]], bounds: list[float]
) -> None:
    if tallies.native() is None:
        pytest.skip("the extension is not built here (required under CI: test_native.py)")
    bounds = sorted(bounds)
    made = []
    for compiled in (True, False):
        with pytest.MonkeyPatch.context() as patch:
            if not compiled:
                _python_children(patch)
            counter = TalliedCounter("tb_d", "D", ["k"])
            histogram = TalliedHistogram("tb_dh", "DH", ["k"], buckets=bounds)
            outcomes = []
            for method, key, amount in calls:
                child = (counter if method == "inc" else histogram).labels(key)
                outcomes.append(_outcome(functools.partial(getattr(child, method), amount)))
            made.append((outcomes, _rows(counter._tally), _rows(histogram._tally)))
    assert made[0] == made[1]


def test_a_compiled_child_counts_each_thread_in_its_own_row() -> None:
    """A thread's ident is reused once it ended: its counts must reach the kept rows, and
    a new thread must count in rows of its own."""
    counter = TalliedCounter("tb_threads", "Threads")
    histogram = TalliedHistogram("tb_threads_h", "Threads", buckets=(1.0,))
    child, observed = counter._unlabelled(), histogram._unlabelled()
    for n in range(1, 40):
        thread = threading.Thread(target=lambda n=n: (child.inc(n), observed.observe(0.5)))
        thread.start()
        thread.join()
        child.inc()  # this thread's row, between the others'
    assert counter._tally.summed() == {(): [sum(range(1, 40)) + 39.0]}
    assert histogram._tally.summed() == {(): [39.0, 0.0, 19.5]}


def test_a_compiled_child_holds_no_reference_it_does_not_own() -> None:
    counter = TalliedCounter("tb_refs", "Refs", ["k"])
    child = counter.labels("a")
    child.inc()
    (row,) = [r for rows in [counter._tally.local.rows] for r in rows.values()]
    before = sys.getrefcount(row), sys.getrefcount(child)
    for amount in (1, 2.5, True, Fraction(1, 3), -1.0, float("nan")):
        _outcome(lambda amount=amount: child.inc(amount))
    assert (sys.getrefcount(row), sys.getrefcount(child)) == before


def test_a_compiled_child_made_without_init_refuses_to_count() -> None:
    if tallies.native() is None:
        pytest.skip("the extension is not built here (required under CI: test_native.py)")
    for child_type, method in ((tallies.native().TallyCounter, "inc"),
                               (tallies.native().TallyHistogram, "observe")):  # fmt: skip
        bare = child_type.__new__(child_type)
        with pytest.raises(TypeError, match="without __init__"):
            getattr(bare, method)(1.0)
        with pytest.raises(TypeError, match="without __init__"):
            getattr(bare, method)(amount=1.0)


def test_bucket_bounds_the_histogram_takes_count_alike_in_both_children() -> None:
    """A NaN bound passes the histogram's order check, as prometheus_client's: both children
    take it, and probe the bounds as bisect_left does."""
    amounts = (0.5, 1.0, 2.0, float("nan"), 7.0, -3)
    rows = []
    for compiled in (True, False):
        with pytest.MonkeyPatch.context() as patch:
            if not compiled:
                _python_children(patch)
            histogram = TalliedHistogram("tb_nan", "NaN", buckets=(1.0, float("nan"), 5.0))
            for amount in amounts:
                histogram.observe(amount)
            rows.append(_rows(histogram._tally))
    assert rows[0] == rows[1]
