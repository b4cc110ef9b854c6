"""Prometheus metrics of one engine, on a registry of its own (nothing global at import)."""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
# Finer buckets where the targets sit (freshness p99 <= 50 ms), so quantiles read off the
# histogram (Prometheus' histogram_quantile) are close to exact.
FRESHNESS_BUCKETS = (
    0.001,
    0.002,
    0.003,
    0.005,
    0.0075,
    0.01,
    0.015,
    0.02,
    0.025,
    0.03,
    0.04,
    0.05,
    0.075,
    0.1,
    0.15,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.events_ingested = Counter(
            "tailorbot_events_ingested", "Events accepted, by type", ["type"], registry=r
        )
        self.events_rejected = Counter(
            "tailorbot_events_rejected",
            "Events rejected at the door, by reason",
            ["reason"],
            registry=r,
        )
        self.events_applied = Counter(
            "tailorbot_events_applied", "Events applied to feature state", registry=r
        )
        self.events_skipped = Counter(
            "tailorbot_events_skipped",
            "Events not applied, by reason (duplicate, late, no_consent, erased)",
            ["reason"],
            registry=r,
        )
        self.processor_lag = Gauge(
            "tailorbot_processor_lag",
            "Records not yet applied, per partition",
            ["partition"],
            registry=r,
        )
        self.apply_latency = Histogram(
            "tailorbot_apply_latency_seconds",
            "Time to apply one polled batch (state load, apply, store write, commit)",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.freshness = Histogram(
            "tailorbot_event_to_feature_seconds",
            "Wall time from ingestion to the feature write, per event",
            buckets=FRESHNESS_BUCKETS,
            registry=r,
        )
        self.events_archived = Counter(
            "tailorbot_events_archived", "Events written to the archive (new rows)", registry=r
        )
        self.archive_lag = Gauge(
            "tailorbot_archive_lag",
            "Records not yet archived, per partition",
            ["partition"],
            registry=r,
        )
        self.request_latency = Histogram(
            "tailorbot_request_latency_seconds",
            "API request latency, by route",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.decisions = Counter(
            "tailorbot_decisions", "Personalize decisions, by outcome", ["outcome"], registry=r
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)


def merged_exposition(local: CollectorRegistry, remote: str) -> bytes:
    """``local``'s metrics with the families of ``remote`` (the text exposition of another
    process, e.g. the stream worker) in place of the local families of the same name.

    >>> mine, theirs = Metrics(), Metrics()
    >>> theirs.events_applied.inc(5)
    >>> text = merged_exposition(mine.registry, theirs.render().decode()).decode()
    >>> "tailorbot_events_applied_total 5.0" in text
    True
    """
    families = list(text_string_to_metric_families(remote))
    names = {family.name for family in families}
    merged = CollectorRegistry()
    merged.register(_Families(families + [f for f in local.collect() if f.name not in names]))
    return generate_latest(merged)


class _Families:
    """A collector yielding fixed, already collected families."""

    def __init__(self, families: list[Metric]) -> None:
        self.families = families

    def collect(self) -> Iterable[Metric]:
        return self.families
