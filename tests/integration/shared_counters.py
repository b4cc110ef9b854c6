"""The shared counters, recomputed from the log: what the stream workers add (article
statistics, the segments' variant memory) and what feedback teaches the experiment and the
bandit, each exactly once per event in the log."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from tailorbot.config import Settings
from tailorbot.features.memory import NS_SEGMENT_VARIANT
from tailorbot.features.params import FeatureParams
from tailorbot.features.state import APPLIED, apply_outcome, new_state
from tailorbot.log import EventLog
from tailorbot.models.recommend.collaborative import NAMESPACES, Deltas, add_deltas
from tailorbot.store import Stores
from tailorbot.stream.article_stats import ArticleStatsCollector
from tailorbot.stream.loop import decode_records
from tests.helpers import bandit_updates
from tests.integration.cluster import logged_events

# The shared counters the stream workers add: article statistics, the segments' variant memory.
WORKER_NAMESPACES = (*NAMESPACES, NS_SEGMENT_VARIANT)


def expected_worker_counters(log: EventLog, settings: Settings) -> Deltas:
    """The shared counters of :data:`WORKER_NAMESPACES` recomputed over the log, as one worker
    that never crashed would add them: each user's events in log order, from an empty state,
    each event id applied once (no profiles: the tests that use this set none)."""
    params = FeatureParams.of(settings)
    collector = ArticleStatsCollector()
    states: dict[str, dict[str, Any]] = {}
    counts: Counter[str] = Counter()
    for partition in range(log.num_partitions):
        for record, event, ts in decode_records(log.read_all(partition), counts):
            user = event["user_id"]
            state = states.setdefault(user, new_state())
            view = collector.view_before(user, state, None, event, ts)
            if apply_outcome(state, event, params, ts) == APPLIED and view is not None:
                collector.add(user, record.offset, event, view)
    assert counts["malformed"] == 0
    totals: Deltas = {}
    for increments in collector.take().values():
        for _, deltas in increments:
            add_deltas(totals, deltas)
    return totals


def assert_worker_counters_match_log(log: EventLog, stores: Stores, settings: Settings) -> int:
    """The stored shared counters equal :func:`expected_worker_counters`; returns how many
    counters that is (a check over nothing proves nothing)."""
    expected = expected_worker_counters(log, settings)
    for namespace in WORKER_NAMESPACES:
        got = _nonzero(stores.counters.counters(namespace))
        want = _nonzero(expected.get(namespace, {}))
        assert got == pytest.approx(want), (namespace, _differences(got, want))
    return sum(len(_nonzero(expected.get(ns, {}))) for ns in WORKER_NAMESPACES)


def _differences(got: dict[str, float], want: dict[str, float]) -> dict[str, tuple]:
    return {k: (got.get(k), want.get(k)) for k in got.keys() | want.keys()
            if got.get(k) != pytest.approx(want.get(k))}  # fmt: skip


def _nonzero(counters: dict[str, float]) -> dict[str, float]:
    return {k: v for k, v in counters.items() if v != 0}


def feedback_in_log(log: EventLog) -> dict[str, dict[str, Any]]:
    """Per decision id, what its feedback events in the log say (``rating``, ``resolved``,
    ``variant``): each event id counted once, however often it was sent."""
    found: dict[str, dict[str, Any]] = {}
    for events in logged_events(log).values():
        for event in events:
            add_feedback(found, event)
    return found


def add_feedback(found: dict[str, dict[str, Any]], event: dict[str, Any]) -> str | None:
    """Add what ``event`` says to ``found`` (as :func:`feedback_in_log`) when it is a
    feedback event (a rating or a resolution of a decision); returns that decision's id."""
    decision = (event.get("metadata") or {}).get("decision_id")
    if decision is None or event["type"] not in ("rating", "resolution"):
        return None
    entry = found.setdefault(decision, {"variant": event["metadata"].get("variant")})
    key = "rating" if event["type"] == "rating" else "resolved"
    entry[key] = event["score"] if key == "rating" else event["resolved"]
    return str(decision)


def assert_feedback_learned_once(
    log: EventLog, stores: Stores, experiment_namespace: str, bandit_namespace: str
) -> int:
    """The experiment's outcome counters and the bandit's per-variant counts equal what the
    feedback events in the log say; returns the number of decisions with feedback."""
    feedback = feedback_in_log(log)
    outcomes: dict[str, float] = {}
    for key, value in stores.counters.counters(experiment_namespace).items():
        metric = key.rsplit("/", 1)[1]  # summed over arms, buckets and periods
        outcomes[metric] = outcomes.get(metric, 0.0) + value
    outcomes.pop("reward_sum", None)  # the reward's formula is not what this checks
    ratings = [f["rating"] for f in feedback.values() if "rating" in f]
    resolved = [f["resolved"] for f in feedback.values() if "resolved" in f]
    expected = {
        "feedback": len(feedback),
        "rating_n": len(ratings),
        "rating_sum": sum(ratings),
        "resolved_n": len(resolved),
        "resolved_sum": sum(resolved),
        "reward_n": len(feedback),
    }
    assert outcomes == pytest.approx(expected), (outcomes, expected)
    counts = bandit_updates(stores.counters, bandit_namespace)
    variants = Counter(f["variant"] for f in feedback.values())
    assert counts == pytest.approx(dict(variants)), (counts, variants)
    return len(feedback)
