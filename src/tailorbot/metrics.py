"""Prometheus metrics of one engine, on a registry of its own (nothing global at import).

Besides the serving and stream figures, the model and data health ones: what the intent model
predicts (intents, confidence, message length: the inputs of the drift check), why it falls
back, which response variant the bandit picks and how often it explores, and the customers'
ratings and resolutions per experiment arm. ``tailorbot_drift_psi`` is set by a drift monitor
from these counters; monitors hook in with :meth:`Metrics.before_render`.

The figures every request counts (its route's latency and status, the decision's intent,
fallback, variant, confidence and length, a feedback's rating) are kept as plain numbers per
thread and summed when collected (``_tallies.py``): prometheus_client's own ``inc`` and
``observe`` came to some 3 % of a request's instructions. Their exposition is the same.

>>> m = Metrics()
>>> m.observe_decision("card_arrival", 0.9, 40, None, "personalized", "concise", explored=False)
>>> values_by_label(family_lookup(m.registry.collect())(m.intent_predictions), "intent")
{'card_arrival': 1.0}
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families

from tailorbot._tallies import TalliedCounter, TalliedHistogram

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

# Bins of the drift check's numeric inputs; the training reference uses the same edges.
CONFIDENCE_BUCKETS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95)
MESSAGE_CHARS_BUCKETS = (16, 24, 32, 48, 64, 96, 128, 192, 256, 512)
FEEDBACK_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64)
MAX_CACHED_CHILDREN = 10_000  # (intent, fallback, arm, variant) combinations kept


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
        self.request_latency = TalliedHistogram(
            "tailorbot_request_latency_seconds",
            "API request latency, by route",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.decisions = TalliedCounter(
            "tailorbot_decisions", "Personalize decisions, by outcome", ["outcome"], registry=r
        )
        self.dead_letters = Counter(
            "tailorbot_dead_letters",
            "Log records put in the dead letters (refused for good), by consumer group",
            ["group"],
            registry=r,
        )
        self.requests_shed = Counter(
            "tailorbot_requests_shed",
            "Requests answered 503 at admission: concurrency or body_bytes bound",
            ["reason"],
            registry=r,
        )
        self.requests_in_flight = Gauge(
            "tailorbot_requests_in_flight", "Requests admitted and not yet answered", registry=r
        )
        self.model_swaps = Counter(
            "tailorbot_model_swaps", "New current model versions loaded without restart", registry=r
        )
        self.retrain_last = Gauge(
            "tailorbot_retrain_last_info",
            "1 for the last retraining outcome (promoted, kept, failed) and its version",
            ["outcome", "version"],
            registry=r,
        )
        self.retrain_last_time = Gauge(
            "tailorbot_retrain_last_timestamp_seconds",
            "When the last retraining finished (epoch seconds)",
            registry=r,
        )

        self.responses = TalliedCounter(
            "tailorbot_responses",
            "API responses, by route and status code",
            ["route", "status"],
            registry=r,
        )
        self._health_metrics(r)
        self._hooks: list[Callable[[], object]] = []
        self._children: dict[tuple[str, str | None, str, str], tuple[Any, Any, Any]] = {}
        self._feedback_children: dict[tuple[Any, tuple[str, ...]], Any] = {}
        self._outcomes: dict[str, Any] = {}  # two outcomes
        # the unlabelled figures of every decision, their children kept as the labelled ones
        self._decision_figures = (
            self.intent_confidence.labels(),
            self.message_chars.labels(),
            self.bandit_explorations.labels(),
        )

    def _health_metrics(self, r: CollectorRegistry) -> None:
        """Model and data health: the drift inputs, fallbacks, the bandit, outcomes by arm."""
        self.intent_predictions = TalliedCounter(
            "tailorbot_intent_predictions", "Predicted intents of decisions", ["intent"], registry=r
        )
        self.intent_confidence = TalliedHistogram(
            "tailorbot_intent_confidence",
            "Top-intent probability of decisions",
            buckets=CONFIDENCE_BUCKETS,
            registry=r,
        )
        self.message_chars = TalliedHistogram(
            "tailorbot_message_chars",
            "Length of the personalized messages, in characters",
            buckets=MESSAGE_CHARS_BUCKETS,
            registry=r,
        )
        self.feedback_batch_size = TalliedHistogram(
            "tailorbot_feedback_batch_size",
            "Feedbacks applied together in one batch (one log append, one store write)",
            buckets=FEEDBACK_BATCH_BUCKETS,
            registry=r,
        )
        self.fallbacks = TalliedCounter(
            "tailorbot_fallbacks", "Decisions that fell back, by reason", ["reason"], registry=r
        )
        self.variant_choices = TalliedCounter(
            "tailorbot_variant_choices",
            "Response variants served, by experiment arm",
            ["arm", "variant"],
            registry=r,
        )
        self.bandit_explorations = TalliedCounter(
            "tailorbot_bandit_explorations",
            "Personalized decisions whose variant was not the bandit's best-scored one",
            registry=r,
        )
        self.feedback_ratings = TalliedCounter(
            "tailorbot_feedback_ratings", "CSAT ratings received, by arm", ["arm"], registry=r
        )
        self.feedback_rating_points = TalliedCounter(
            "tailorbot_feedback_rating_points",
            "Sum of the CSAT ratings (1-5) received, by arm",
            ["arm"],
            registry=r,
        )
        self.feedback_resolutions = TalliedCounter(
            "tailorbot_feedback_resolutions",
            "Resolution reports, by arm and outcome",
            ["arm", "resolved"],
            registry=r,
        )
        self.drift_psi = Gauge(
            "tailorbot_drift_psi",
            "Population stability index of a model input over the recent window against "
            "the training reference (NaN until the window has enough decisions)",
            ["feature"],
            registry=r,
        )
        self.model_info = Gauge(
            "tailorbot_model_info",
            "1 for each loaded model version (intent, bandit namespace, knowledge base)",
            ["kind", "version"],
            registry=r,
        )
        self.archive_dead_letters = Counter(
            "tailorbot_archive_dead_letters",
            "Log records the archive worker skipped as undecodable",
            registry=r,
        )
        self.worker_batch_errors = Counter(
            "tailorbot_worker_batch_errors",
            "Worker batches that failed and were retried, by worker",
            ["worker"],
            registry=r,
        )

    def count_decision(self, outcome: str) -> None:
        """Count one decision by outcome (``answered``, ``fallback``): the labelled child is
        kept, as in :meth:`observe_decision`."""
        child = self._outcomes.get(outcome)
        if child is None:
            child = self._outcomes[outcome] = self.decisions.labels(outcome=outcome)
        child.inc()

    def observe_decision(
        self,
        intent: str,
        confidence: float,
        message_chars: int,
        fallback: str | None,
        arm: str,
        variant: str,
        *,
        explored: bool,
    ) -> None:
        """Count one decision for the health figures (a few counter increments; the children
        are kept, since ``labels()`` costs more than the increment, and an unlabelled
        figure's own ``observe`` is a call more)."""
        children = self._children
        key = (intent, fallback, arm, variant)
        cached = children.get(key)
        if cached is None:
            cached = (
                self.intent_predictions.labels(intent=intent),
                self.fallbacks.labels(reason=fallback) if fallback is not None else None,
                self.variant_choices.labels(arm=arm, variant=variant),
            )
            if len(children) < MAX_CACHED_CHILDREN:
                children[key] = cached
        intent_child, fallback_child, variant_child = cached
        intent_child.inc()
        if fallback_child is not None:
            fallback_child.inc()
        variant_child.inc()
        confidences, lengths, explorations = self._decision_figures
        confidences.observe(confidence)
        lengths.observe(message_chars)
        if explored:
            explorations.inc()

    def observe_feedback(self, arm: str, rating: int | None, resolved: bool | None) -> None:
        """Count one feedback's outcome (labelled children cached, as in
        :meth:`observe_decision`; each made at its first use, so a series appears when it
        first counts)."""
        if rating is not None:
            self._feedback_child(self.feedback_ratings, arm).inc()
            self._feedback_child(self.feedback_rating_points, arm).inc(rating)
        if resolved is not None:
            outcome = "true" if resolved else "false"
            self._feedback_child(self.feedback_resolutions, arm, outcome).inc()

    def _feedback_child(self, counter: Any, *values: str) -> Any:
        """``counter.labels(*values)``, cached (label values in the counter's label order)."""
        key = (counter, values)
        child = self._feedback_children.get(key)
        if child is None:
            child = counter.labels(*values)
            if len(self._feedback_children) < MAX_CACHED_CHILDREN:
                self._feedback_children[key] = child
        return child

    def before_render(self, hook: Callable[[], object]) -> None:
        """Call ``hook`` before each exposition (a monitor refreshing its gauges)."""
        self._hooks.append(hook)

    def refresh(self) -> None:
        for hook in list(self._hooks):
            hook()

    def render(self) -> bytes:
        self.refresh()
        return generate_latest(self.registry)


# The families the stream worker and the archiver set: with the worker in a process of its
# own, the API's /metrics takes these from it and every other family from the API process
# (the worker's registry has them all too, empty or zero).
WORKER_FAMILIES = frozenset(
    {
        "tailorbot_events_applied",
        "tailorbot_events_skipped",
        "tailorbot_processor_lag",
        "tailorbot_apply_latency_seconds",
        "tailorbot_event_to_feature_seconds",
        "tailorbot_worker_batch_errors",
        "tailorbot_dead_letters",
        "tailorbot_events_archived",
        "tailorbot_archive_lag",
        "tailorbot_archive_dead_letters",
    }
)


def merged_exposition(
    local: CollectorRegistry, remote: str, owned: frozenset[str] = WORKER_FAMILIES
) -> bytes:
    """``local``'s metrics, with the families named in ``owned`` taken from ``remote`` (the
    text exposition of the worker process) instead.

    >>> api, worker = Metrics(), Metrics()
    >>> api.decisions.labels(outcome="answered").inc()
    >>> worker.events_applied.inc(5)
    >>> text = merged_exposition(api.registry, worker.render().decode()).decode()
    >>> "tailorbot_events_applied_total 5.0" in text
    True
    >>> 'tailorbot_decisions_total{outcome="answered"} 1.0' in text  # not the worker's empty one
    True
    """
    taken = [f for f in text_string_to_metric_families(remote) if _family_root(f.name) in owned]
    kept = [f for f in local.collect() if _family_root(f.name) not in owned]
    return generate_latest(registry_of(taken + kept))


def is_created_family(name: str) -> bool:
    """Whether a family read from the text format holds ``_created`` series: the format gives
    a counter's or histogram's creation times a gauge family of their own."""
    return name.endswith("_created")


def _family_root(name: str) -> str:
    """The metric a family belongs to (``x`` for ``x_created``)."""
    return name.removesuffix("_created") if is_created_family(name) else name


def family_lookup(families: Iterable[Metric]) -> Callable[[Any], Metric | None]:
    """Finds one of :class:`Metrics`' metrics among already collected ``families`` (a
    registry's, or parsed from text and summed); None for one they do not hold.

    >>> metrics = Metrics()
    >>> metrics.decisions.labels(outcome="answered").inc()
    >>> found = family_lookup(metrics.registry.collect())
    >>> values_by_label(found(metrics.decisions), "outcome"), found(metrics.fallbacks).samples
    ({'answered': 1.0}, [])
    >>> family_lookup([])(metrics.decisions) is None
    True
    """
    by_name = {family.name: family for family in families}
    return lambda metric: by_name.get(metric.describe()[0].name)


def values_by_label(family: Metric | None, label: str) -> dict[str, float]:
    """``{value of label: sample}`` of a counter's totals or a gauge's values in a collected
    ``family`` (none when it is None)."""
    if family is None:
        return {}
    name = family.name + ("_total" if family.type == "counter" else "")
    return {
        s.labels[label]: s.value for s in family.samples if s.name == name and label in s.labels
    }


def counts_fell(old: Mapping[Any, float], new: Mapping[Any, float]) -> bool:
    """Whether a cumulative count of ``new`` is below ``old``'s (a series gone counts 0): in a
    sum of processes, one killed outright took its counts with it (a reset)."""
    return any(new.get(key, 0.0) < value for key, value in old.items())


def registry_of(families: list[Metric]) -> CollectorRegistry:
    """A registry holding ``families``, already collected (parsed from text, merged)."""
    registry = CollectorRegistry()
    registry.register(_CollectedFamilies(families))
    return registry


class _CollectedFamilies:
    """A collector yielding fixed, already collected families."""

    def __init__(self, families: list[Metric]) -> None:
        self.families = families

    def collect(self) -> Iterable[Metric]:
        return self.families
