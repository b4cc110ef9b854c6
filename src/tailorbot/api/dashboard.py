"""What the dashboard shows, aggregated from the server's Prometheus metrics.

:class:`DashboardData` never reads the log or the stores per request, apart from the
experiment report (one read of the shared counters): it reads the cumulative counters and
histograms of :class:`~tailorbot.metrics.Metrics` (by default this process's registry; the
app gives it the server's, summed over the processes of ``serve --workers N``: see
:mod:`tailorbot.api.server_metrics`), keeps a snapshot of them at most every
``min_step_s`` seconds (up to ``history`` of them) and turns consecutive snapshots into rates:
decisions per second, latency percentiles of ``/v1/personalize``, fallback, hand-off and
exploration rates and the bandit's variant shares, over time. The history starts with the
first poll of the page. The answer's ``poll_s`` is that step, and the page polls that often
(both set by ``dashboard_step_s``): a faster poll would only get the last snapshot again.

>>> from tailorbot.metrics import Metrics
>>> metrics = Metrics()
>>> data = DashboardData(metrics, min_step_s=0.0)
>>> metrics.observe_decision("card_arrival", 0.9, 30, None, "personalized", "concise",
...                          explored=False)
>>> metrics.decisions.labels(outcome="answered").inc()
>>> snap = data.snapshot()
>>> snap["totals"]["decisions"], snap["intents"][0]["name"], snap["poll_s"]
(1.0, 'card_arrival', 0.0)
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from prometheus_client.metrics_core import Metric

from tailorbot.errors import Unavailable
from tailorbot.features.memory import PERSONALIZED_ARM
from tailorbot.metrics import Metrics, counts_fell, family_lookup, values_by_label

PERSONALIZE_ROUTE = "/v1/personalize"
RATE_SPAN_S = 10.0  # each point's rates are taken over at least this much time, for smoothness
QUANTILES = (0.5, 0.95, 0.99)
# A snapshot's counts by label (cumulative, as its totals)
COUNTED_BY_LABEL = ("variants", "intents", "ratings", "fallback_reasons")


class DashboardData:
    """Snapshots of the server's metrics turned into the dashboard's JSON (see the module
    doc). ``metrics`` names the families read; ``read`` collects them (default: ``metrics``'
    own registry); a snapshot reads them once."""

    def __init__(
        self,
        metrics: Metrics,
        read: Callable[[], Iterable[Metric]] | None = None,
        min_step_s: float = 2.0,  # the dashboard_step_s setting's default
        history: int = 900,
    ) -> None:
        self.metrics = metrics
        self.read = read
        self.min_step_s = min_step_s
        self.history = history
        self._snapshots: deque[dict[str, Any]] = deque(maxlen=history)
        self._lock = threading.Lock()
        self._failed: tuple[float, str] | None = None  # when a read last failed, and why

    def snapshot(self) -> dict[str, Any]:
        """Take a snapshot (throttled) and return the series, mixes and gauges.
        :class:`Unavailable` when the figures cannot be read (a server process that does not
        answer), for ``min_step_s`` after a failed read without reading again."""
        now, clock = time.time(), time.monotonic()  # the monotonic clock paces the reads
        with self._lock:
            due = not self._snapshots or clock - self._snapshots[-1]["m"] >= self.min_step_s
            failed = self._failed
        if due:
            if failed is not None and clock - failed[0] < self.min_step_s:
                raise Unavailable(failed[1])  # polls arriving meanwhile do not wait again
            self._take(now, clock)
        with self._lock:
            snapshots = list(self._snapshots)
        latest = snapshots[-1]
        return {
            "time": now,
            "poll_s": self.min_step_s,
            "series": _series(snapshots),
            "intents": _top_intents(snapshots[0], latest),
            "totals": {
                "decisions": latest["decisions"],
                "fallbacks": latest["fallbacks"],
                "handoffs": latest["handoffs"],
                "feedback": sum(latest["ratings"].values()),
            },
            "fallback_reasons": latest["fallback_reasons"],
            "lag": latest["lag"],
            "drift": {k: (None if math.isnan(v) else v) for k, v in latest["drift"].items()},
        }

    def _take(self, now: float, clock: float) -> None:
        """Read a snapshot, outside the lock (reading the other processes of ``serve
        --workers N`` waits for them), and keep it."""
        try:
            taken = {**self._read(now), "m": clock}
        except Unavailable as exc:
            with self._lock:
                self._failed = (clock, exc.message)
            raise
        with self._lock:
            self._failed = None
            if self._snapshots and clock <= self._snapshots[-1]["m"]:
                return  # a concurrent poll kept a newer one
            if self._snapshots and _went_back(self._snapshots[-1], taken):
                # A server process killed outright took its counts out of the sum: a reset,
                # as Prometheus reads one. Rates start again from here, never negative.
                self._snapshots.clear()
            self._snapshots.append(taken)

    def _read(self, now: float) -> dict[str, Any]:
        m = self.metrics
        of = family_lookup(self.read() if self.read is not None else m.registry.collect())
        outcomes = values_by_label(of(m.decisions), "outcome")
        variants = _samples(of(m.variant_choices), "_total")
        return {
            "t": now,
            "decisions": sum(outcomes.values()),
            "fallbacks": outcomes.get("fallback", 0.0),
            "fallback_reasons": values_by_label(of(m.fallbacks), "reason"),
            "handoffs": values_by_label(of(m.events_ingested), "type").get("handoff", 0.0),
            "explorations": _samples(of(m.bandit_explorations), "_total").get((), 0.0),
            "variants": {
                labels["variant"]: v
                for k, v in variants.items()
                if (labels := dict(k))["arm"] == PERSONALIZED_ARM
            },
            "intents": values_by_label(of(m.intent_predictions), "intent"),
            "ratings": values_by_label(of(m.feedback_ratings), "arm"),
            "latency": _buckets(of(m.request_latency), PERSONALIZE_ROUTE),
            "lag": {
                "stream": values_by_label(of(m.processor_lag), "partition"),
                "archive": values_by_label(of(m.archive_lag), "partition"),
            },
            "drift": values_by_label(of(m.drift_psi), "feature"),
        }


def lag_from_exposition(text: str) -> dict[str, dict[str, float]]:
    """The stream and archive lag per partition in another process's metrics text (the
    stream worker's, when it runs in a process of its own).

    >>> lag_from_exposition('tailorbot_processor_lag{partition="0"} 3.0\\n')
    {'stream': {'0': 3.0}, 'archive': {}}
    """
    from prometheus_client.parser import text_string_to_metric_families

    lag: dict[str, dict[str, float]] = {"stream": {}, "archive": {}}
    names = {"tailorbot_processor_lag": "stream", "tailorbot_archive_lag": "archive"}
    for family in text_string_to_metric_families(text):
        kind = names.get(family.name)
        if kind is None:
            continue
        for sample in family.samples:
            lag[kind][sample.labels["partition"]] = sample.value
    return lag


def _samples(family: Metric | None, suffix: str) -> dict[tuple[tuple[str, str], ...], float]:
    """Sample values of ``family`` whose name ends in ``suffix``, keyed by sorted labels."""
    if family is None:  # not among the families read
        return {}
    return {
        tuple(sorted(s.labels.items())): s.value for s in family.samples if s.name.endswith(suffix)
    }


def _buckets(family: Metric | None, route: str) -> list[tuple[float, float]]:
    """Cumulative (upper bound, count) buckets of a histogram ``family`` for ``route``."""
    if family is None:
        return []
    return [
        (float(s.labels["le"]), s.value)
        for s in family.samples
        if s.name.endswith("_bucket") and s.labels.get("route") == route
    ]


def _went_back(old: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
    """Whether any cumulative figure of ``new`` is below ``old``'s (a series gone counts 0)."""
    if any(new[key] < old[key] for key in ("decisions", "fallbacks", "handoffs", "explorations")):
        return True
    if counts_fell(dict(old["latency"]), dict(new["latency"])):
        return True
    return any(counts_fell(old[key], new[key]) for key in COUNTED_BY_LABEL)


def _series(snapshots: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One point per snapshot after the first, its rates over at least ``RATE_SPAN_S``."""
    points = []
    start = 0
    for i in range(1, len(snapshots)):
        while start < i - 1 and snapshots[i]["m"] - snapshots[start + 1]["m"] >= RATE_SPAN_S:
            start += 1
        points.append(_point(snapshots[start], snapshots[i]))
    return points


def _point(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    seconds = max(new["m"] - old["m"], 1e-9)
    decisions = new["decisions"] - old["decisions"]
    variants = {k: v - old["variants"].get(k, 0.0) for k, v in new["variants"].items()}
    personalized = sum(variants.values())
    latency = _delta_buckets(old["latency"], new["latency"])
    return {
        "t": new["t"],
        "decisions_per_s": decisions / seconds,
        "latency_ms": {f"p{round(q * 100)}": _ms(_quantile(q, latency)) for q in QUANTILES},
        "fallback_rate": _ratio(new["fallbacks"] - old["fallbacks"], decisions),
        "handoff_rate": _ratio(new["handoffs"] - old["handoffs"], decisions),
        "exploration_rate": _ratio(new["explorations"] - old["explorations"], personalized),
        "variant_shares": {k: _ratio(v, personalized) for k, v in sorted(variants.items())},
    }


def _delta_buckets(
    old: list[tuple[float, float]], new: list[tuple[float, float]]
) -> list[tuple[float, float]]:
    before = dict(old)
    return [(le, count - before.get(le, 0.0)) for le, count in new]


def _quantile(q: float, buckets: list[tuple[float, float]]) -> float | None:
    """Like Prometheus' histogram_quantile: linear within the bucket holding the rank."""
    if not buckets or buckets[-1][1] <= 0:
        return None
    rank = q * buckets[-1][1]
    lower, below = 0.0, 0.0
    for le, count in buckets:
        if count >= rank:
            if math.isinf(le):
                return lower
            return lower + (le - lower) * ((rank - below) / max(count - below, 1e-12))
        lower, below = le, count
    return lower


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 3)


def _ratio(part: float, whole: float) -> float | None:
    return part / whole if whole > 0 else None


def _top_intents(old: Mapping[str, Any], new: Mapping[str, Any], n: int = 12) -> list[dict]:
    """The most predicted intents since the first snapshot (all time if that is all there is)."""
    counts = {k: v - old["intents"].get(k, 0.0) for k, v in new["intents"].items()}
    if not any(v > 0 for v in counts.values()):
        counts = dict(new["intents"])
    top = sorted(((v, k) for k, v in counts.items() if v > 0), reverse=True)[:n]
    return [{"name": k, "count": v} for v, k in top]
