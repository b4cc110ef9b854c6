"""Input drift: the population stability index (PSI) of the intent model's inputs and outputs
in a recent window against the training reference.

The reference is measured at training time on the held-out validation rows (the predicted
intent, the top-intent probability and the message length, binned like the serving metrics)
and stored in the model's metadata (``metadata["reference"]``). At serving time the same three
are counted by Prometheus counters (:meth:`tailorbot.metrics.Metrics.observe_decision`); the
:class:`DriftMonitor` keeps snapshots of those cumulative counts and compares the counts
gained over the last ``window_s`` seconds with the reference, so nothing is computed on the
request path.

PSI = sum over bins of (recent share - reference share) * ln(recent share / reference share).
The usual reading: below 0.1 stable, 0.1-0.25 a moderate shift, above 0.25 a large one.

>>> round(psi({"a": 50, "b": 50}, {"a": 50, "b": 50}), 6)
0.0
>>> round(psi({"a": 90, "b": 10}, {"a": 50, "b": 50}), 3)
0.879
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from prometheus_client.metrics_core import Metric

from tailorbot.metrics import (
    CONFIDENCE_BUCKETS,
    MESSAGE_CHARS_BUCKETS,
    Metrics,
    counts_fell,
    family_lookup,
    values_by_label,
)

FEATURES = ("intent", "confidence", "message_chars")
Reference = Mapping[str, Any] | None
Counts = dict[str, dict[str, float]]  # per feature, per bin: cumulative served counts
MIN_SHARE = 1e-4  # an empty bin's share, so that ln() stays finite


def psi(recent: Mapping[str, float], reference: Mapping[str, float]) -> float:
    """PSI of ``recent`` against ``reference`` (counts per bin; bins missing count 0)."""
    n_recent, n_reference = sum(recent.values()), sum(reference.values())
    if n_recent <= 0 or n_reference <= 0:
        return math.nan
    total = 0.0
    for key in set(recent) | set(reference):
        a = max(recent.get(key, 0.0) / n_recent, MIN_SHARE)
        e = max(reference.get(key, 0.0) / n_reference, MIN_SHARE)
        total += (a - e) * math.log(a / e)
    return total


def bin_counts(values: Iterable[float], edges: Sequence[float]) -> dict[str, int]:
    """Counts per bin keyed by the bin's upper edge (``le`` as in Prometheus; "+Inf" last).

    >>> bin_counts([0.05, 0.15, 0.99], (0.1, 0.2))
    {'0.1': 1, '0.2': 1, '+Inf': 1}
    """
    keys = [_le(e) for e in edges] + ["+Inf"]
    counts = dict.fromkeys(keys, 0)
    for value in values:
        for edge, key in zip(edges, keys, strict=False):
            if value <= edge:
                counts[key] += 1
                break
        else:
            counts["+Inf"] += 1
    return counts


def reference_of(
    intents: Sequence[str], confidences: Sequence[float], texts: Sequence[str]
) -> dict[str, Any]:
    """The training reference stored in the model metadata (see the module doc)."""
    mix: dict[str, int] = {}
    for name in intents:
        mix[name] = mix.get(name, 0) + 1
    return {
        "window": "validation split",
        "n": len(intents),
        "intent": mix,
        "confidence": bin_counts(confidences, CONFIDENCE_BUCKETS),
        "message_chars": bin_counts([len(t) for t in texts], MESSAGE_CHARS_BUCKETS),
    }


class DriftMonitor:
    """PSI of each feature over the last ``window_s`` seconds, set on ``metrics.drift_psi``.

    ``refresh()`` runs before each Prometheus exposition and each dashboard poll; it keeps a
    snapshot of the cumulative counts every ``step_s`` seconds. Until ``min_count`` decisions
    are in the window the PSI is NaN (too few to tell). ``reference`` is the reference or a
    function returning the one in force (a hot-swapped model brings its own).

    ``from_first_read``: the window starts at the first counts :meth:`update` is given, not
    at zero, for counts that began before the monitor did (the sum of the processes of
    ``serve --workers N``, which holds every decision since ``serve`` started). Counts that
    fall (a process killed outright leaves the sum with its counts) start the window again.
    """

    def __init__(
        self,
        reference: Reference | Callable[[], Reference],
        metrics: Metrics,
        window_s: float = 900.0,
        step_s: float = 10.0,
        min_count: int = 50,
        from_first_read: bool = False,
    ) -> None:
        self._reference = reference
        self.metrics = metrics
        self.window_s = window_s
        self.step_s = step_s
        self.min_count = min_count
        self.from_first_read = from_first_read
        self._snapshots: deque[tuple[float, Counts]] = deque()
        self._lock = threading.Lock()
        self._last: dict[str, float] = dict.fromkeys(FEATURES, math.nan)
        self._window_n = 0.0

    @property
    def reference(self) -> Reference:
        """The training reference of the model in force (None: the model has none)."""
        return self._reference() if callable(self._reference) else self._reference

    def refresh(self) -> dict[str, float]:
        """Recompute the PSI of each feature from this process's counts and export it on
        ``metrics.drift_psi``; returns them."""
        result = self.update(self.counts())
        for feature, value in result.items():
            self.metrics.drift_psi.labels(feature=feature).set(value)
        return result

    def update(self, current: Counts) -> dict[str, float]:
        """The PSI of each feature over the window that ends with ``current`` (cumulative
        counts per feature and bin, :meth:`counts`), which joins the snapshots."""
        reference = self.reference
        now = time.monotonic()
        with self._lock:
            if self._snapshots and _fell(self._snapshots[-1][1], current):
                self._snapshots.clear()  # a reset: the window starts again here
            if not self._snapshots or now - self._snapshots[-1][0] >= self.step_s:
                self._snapshots.append((now, current))
            while len(self._snapshots) > 1 and now - self._snapshots[1][0] >= self.window_s:
                self._snapshots.popleft()
            first = len(self._snapshots) > 1 or self.from_first_read
            base = self._snapshots[0][1] if first else _zero(current)
            result = {}
            for feature in FEATURES:
                recent = _minus(current[feature], base[feature])
                n = sum(recent.values())
                if feature == "intent":
                    self._window_n = n
                enough = reference is not None and n >= self.min_count
                value = psi(recent, reference[feature]) if enough and reference else math.nan
                result[feature] = value
            self._last = result
        return result

    @property
    def last(self) -> dict[str, float]:
        return dict(self._last)

    @property
    def window_count(self) -> float:
        """Decisions in the window at the last refresh."""
        return self._window_n

    def counts(self) -> Counts:
        """The cumulative served counts per feature and bin, read from the registry."""
        m = self.metrics
        return self.counts_in(
            family for metric in (m.intent_predictions, m.intent_confidence, m.message_chars)
            for family in metric.collect()
        )  # fmt: skip

    def counts_in(self, families: Iterable[Metric]) -> Counts:
        """:meth:`counts` from families already collected: a registry's, or the sum of the
        processes of ``serve --workers N`` (:mod:`tailorbot.telemetry.process_sum`)."""
        m = self.metrics
        named = family_lookup(families)
        return {
            "intent": values_by_label(named(m.intent_predictions), "intent"),
            "confidence": _histogram_bins(named(m.intent_confidence)),
            "message_chars": _histogram_bins(named(m.message_chars)),
        }


def _histogram_bins(family: Metric | None) -> dict[str, float]:
    """Per-bin counts (Prometheus buckets are cumulative; this takes the differences)."""
    if family is None:
        return {}
    cumulative = [(s.labels["le"], s.value) for s in family.samples if s.name.endswith("_bucket")]
    bins, below = {}, 0.0
    for le, value in cumulative:
        bins[_le(float(le)) if le != "+Inf" else "+Inf"] = value - below
        below = value
    return bins


def _le(edge: float) -> str:
    return "+Inf" if math.isinf(edge) else f"{edge:g}"


def _minus(a: Mapping[str, float], b: Mapping[str, float]) -> dict[str, float]:
    return {k: v - b.get(k, 0.0) for k, v in a.items() if v - b.get(k, 0.0) > 0}


def _fell(before: Counts, now: Counts) -> bool:
    """Whether a bin of ``now`` holds fewer than ``before``'s (a bin gone counts 0)."""
    return any(counts_fell(bins, now[feature]) for feature, bins in before.items())


def _zero(current: Mapping[str, Mapping[str, float]]) -> dict[str, dict[str, float]]:
    return {feature: {} for feature in current}
