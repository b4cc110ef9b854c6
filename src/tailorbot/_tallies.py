"""Prometheus counters and histograms for the per-request figures, kept as plain numbers.

A decision counts a handful of figures (its intent, fallback, variant, confidence, message
length, the route's latency and status). prometheus_client's ``inc`` and ``observe`` go
through a few Python calls and a lock each (``observe`` two): 4.6 k and 10.7 k instructions
(callgrind), about 3 % of a request's in all. Here each thread adds to counts of its own,
with no lock (a thread only ever writes its own), and the counts of every thread are summed
when the registry collects them: 1.9 k and 2.5-4.2 k instructions in Python, and a few
hundred where the compiled children (csrc/tallies.c) add them, which hand to the Python
children what they do not add themselves (a thread's first count, an amount of another
type, a refusal). The exposition is the one prometheus_client writes for its ``Counter``
and ``Histogram``: the same series, ``_created`` included, and the same
``labels(...).inc()`` / ``observe()`` calls to make.

>>> from prometheus_client import CollectorRegistry, generate_latest
>>> registry = CollectorRegistry()
>>> answers = TalliedCounter("answers", "Answers, by status", ["status"], registry=registry)
>>> answers.labels(status="200").inc()
>>> answers.labels("200").inc(2)
>>> sizes = TalliedHistogram("sizes", "Sizes", buckets=(10, 100), registry=registry)
>>> sizes.observe(42)
>>> text = generate_latest(registry).decode()
>>> 'answers_total{status="200"} 3.0' in text, 'sizes_bucket{le="100.0"} 1.0' in text
(True, True)
>>> "sizes_sum 42.0" in text, 'answers_created{status="200"}' in text
(True, True)
"""

from __future__ import annotations

import bisect
import math
import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client import metrics as prometheus_metrics
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector
from prometheus_client.samples import Sample
from prometheus_client.utils import floatToGoString

from tailorbot.compiled import native


class _PerThread:
    """Rows of numbers by series, one dict of them per thread: a thread adds to its own
    with no lock, and :meth:`summed` adds up every thread's (copied whole: a dict's and a
    list's copy is one step under the GIL, so never torn by the thread writing it). The
    rows of a thread that ended are added into one kept dict when next summed: counts never
    fall, and threads that come and go (a pool's idle ones end) leave no dict each."""

    def __init__(self, width: int) -> None:
        self.width = width
        self.created: dict[tuple[str, ...], float] = {}  # when each series first counted
        self.local = threading.local()  # .rows: this thread's dict (see the children)
        self._lock = threading.Lock()  # for a new thread's dict, a new series, a sum
        self._threads: list[tuple[threading.Thread, dict[tuple[str, ...], list[float]]]] = []
        self._ended: dict[tuple[str, ...], list[float]] = {}  # of the threads that ended

    def row(self, key: tuple[str, ...]) -> list[float]:
        """This thread's row of ``key``, made on first use."""
        rows: dict[tuple[str, ...], list[float]] | None = getattr(self.local, "rows", None)
        if rows is None:
            rows = self.local.rows = {}
            with self._lock:
                self._threads.append((threading.current_thread(), rows))
        found = rows.get(key)
        if found is None:
            found = rows[key] = [0.0] * self.width
            with self._lock:
                self.created.setdefault(key, time.time())
        return found

    def summed(self) -> dict[tuple[str, ...], list[float]]:
        """Each series' row summed over the threads, in the order the series began."""
        with self._lock:
            running = []
            for thread, rows in self._threads:
                if thread.is_alive():
                    running.append((thread, rows))
                else:  # it writes no more: its rows join the kept ones, once
                    self._add(self._ended, rows)
            self._threads = running
            total = {key: [0.0] * self.width for key in self.created}
            self._add(total, self._ended)
        for _, rows in running:
            self._add(total, rows.copy())
        return total

    def _add(
        self, total: dict[tuple[str, ...], list[float]], rows: dict[tuple[str, ...], list[float]]
    ) -> None:
        for key, row in rows.items():
            kept = total.setdefault(key, [0.0] * self.width)
            for i, value in enumerate(list(row)):
                kept[i] += value


class _Tallied(Collector):
    """What the two kinds share: the name, help, labels, registration and children."""

    kind: str  # the Prometheus type: "counter" or "histogram"

    def __init__(
        self,
        name: str,
        documentation: str,
        labelnames: Sequence[str] = (),
        registry: CollectorRegistry | None = None,
    ) -> None:
        self.name = name
        self.documentation = documentation
        self.labelnames = tuple(labelnames)
        self._tally = _PerThread(self._width())
        self._children: dict[tuple[str, ...], Any] = {}
        if not self.labelnames:  # shown from the start (a zero), as prometheus_client's
            self.labels()
        if registry is not None:
            registry.register(self)

    def labels(self, *values: Any, **named: Any) -> Any:
        """The child of these label values (by position or by name, as strings), as
        prometheus_client's ``labels``; kept, so a caller may keep it too."""
        if named:
            if values or set(named) != set(self.labelnames):
                raise ValueError(f"{self.name}: label names must be exactly {self.labelnames}")
            values = tuple(named[n] for n in self.labelnames)
        elif len(values) != len(self.labelnames):
            raise ValueError(f"{self.name}: {len(self.labelnames)} label values expected")
        key = tuple(map(str, values))
        child = self._children.get(key)
        if child is None:
            child = self._children.setdefault(key, self._child(key))
            self._tally.row(key)  # the series shows from here on, as prometheus_client's
        return child

    def _width(self) -> int:
        """How many numbers a series' row holds."""
        raise NotImplementedError

    def _child(self, key: tuple[str, ...]) -> Any:
        raise NotImplementedError

    def _unlabelled(self) -> Any:
        if self.labelnames:
            raise ValueError(f"{self.name} has labels {self.labelnames}: use labels() first")
        return self._children[()]

    def describe(self) -> list[Any]:
        return [self._family()]

    def _family(self) -> Any:
        raise NotImplementedError


class _CounterChild:
    __slots__ = ("_key", "_local", "_tally")

    def __init__(self, tally: _PerThread, key: tuple[str, ...]) -> None:
        self._tally, self._key, self._local = tally, key, tally.local

    def inc(self, amount: float = 1.0) -> None:
        if amount < 0:
            raise ValueError("Counters can only be incremented by non-negative amounts.")
        try:  # this thread's row, in one expression: the call of row() costs as much again
            self._local.rows[self._key][0] += amount
        except (AttributeError, KeyError):  # this thread's first count, or this series'
            self._tally.row(self._key)[0] += amount


class TalliedCounter(_Tallied):
    """A counter (``<name>_total`` and ``<name>_created``) kept per thread."""

    kind = "counter"

    def _width(self) -> int:
        return 1  # the total

    def _child(self, key: tuple[str, ...]) -> Any:
        child = _CounterChild(self._tally, key)
        compiled = getattr(native(), "TallyCounter", None)  # None: not built, or before
        return child if compiled is None else compiled(self._tally.local, key, child.inc)

    def inc(self, amount: float = 1.0) -> None:
        """For a counter without labels (else ``labels(...).inc``)."""
        self._unlabelled().inc(amount)

    def _family(self) -> CounterMetricFamily:
        return CounterMetricFamily(self.name, self.documentation, labels=self.labelnames)

    def collect(self) -> Iterator[CounterMetricFamily]:
        family = self._family()
        created = self._tally.created
        with_created = _created_series()
        for key, (total,) in self._tally.summed().items():
            family.add_metric(list(key), total, created=created.get(key) if with_created else None)
        yield family


class _HistogramChild:
    __slots__ = ("_bounds", "_key", "_local", "_tally")

    def __init__(self, tally: _PerThread, key: tuple[str, ...], bounds: list[float]) -> None:
        self._tally, self._key, self._bounds, self._local = tally, key, bounds, tally.local

    def observe(self, amount: float) -> None:
        try:  # as in _CounterChild.inc
            row = self._local.rows[self._key]
        except (AttributeError, KeyError):
            row = self._tally.row(self._key)
        row[-1] += amount
        if amount == amount:  # NaN: in the sum alone, as prometheus_client's
            # the first bucket whose bound is >= amount, as prometheus_client's; last: +Inf
            row[bisect.bisect_left(self._bounds, amount)] += 1


class TalliedHistogram(_Tallied):
    """A histogram (``_bucket``, ``_count``, ``_sum``, ``_created``) kept per thread; a
    histogram without labels shows its empty buckets from the start, as prometheus_client's."""

    kind = "histogram"

    def __init__(
        self,
        name: str,
        documentation: str,
        labelnames: Sequence[str] = (),
        registry: CollectorRegistry | None = None,
        buckets: Sequence[float] = (),
    ) -> None:
        bounds = [float(b) for b in buckets if not math.isinf(b)]
        if bounds != sorted(bounds):
            raise ValueError("Buckets not in sorted order")
        if not bounds:
            raise ValueError(f"{name}: at least one finite bucket bound is needed")
        self._bounds = bounds
        super().__init__(name, documentation, labelnames, registry)

    def _width(self) -> int:
        return len(self._bounds) + 2  # a count per bucket (the last: above every bound), sum

    def _child(self, key: tuple[str, ...]) -> Any:
        child = _HistogramChild(self._tally, key, self._bounds)
        compiled = getattr(native(), "TallyHistogram", None)  # None: not built, or before
        if compiled is None:
            return child
        return compiled(self._tally.local, key, tuple(self._bounds), child.observe)

    def observe(self, amount: float) -> None:
        """For a histogram without labels (else ``labels(...).observe``)."""
        self._unlabelled().observe(amount)

    def _family(self) -> HistogramMetricFamily:
        return HistogramMetricFamily(self.name, self.documentation, labels=self.labelnames)

    def collect(self) -> Iterator[HistogramMetricFamily]:
        family = self._family()
        edges = [floatToGoString(b) for b in self._bounds] + ["+Inf"]
        created = self._tally.created if _created_series() else {}
        for key, row in self._tally.summed().items():
            counts, total = row[:-1], row[-1]
            cumulative, buckets = 0.0, []
            for edge, count in zip(edges, counts, strict=True):
                cumulative += count
                buckets.append((edge, cumulative))
            family.add_metric(list(key), buckets, total)
            if key in created:  # HistogramMetricFamily takes no creation time: added here
                labels = dict(zip(self.labelnames, key, strict=True))
                family.samples.append(Sample(f"{self.name}_created", labels, created[key]))
        yield family


def _created_series() -> bool:
    """Whether ``_created`` series are written: prometheus_client's own switch
    (``disable_created_metrics()``, or ``PROMETHEUS_DISABLE_CREATED_SERIES`` at import)."""
    return bool(getattr(prometheus_metrics, "_use_created", True))


__all__ = ["TalliedCounter", "TalliedHistogram"]
