"""Feedback is applied exactly once: the decision's feedback mark and the learning counters
(experiment outcomes, bandit statistics) are written in one atomic write, so a store that
fails between them cannot leave a decision marked applied whose reward was never learned."""

from __future__ import annotations

from typing import Any

import pytest

from tailorbot.errors import Unavailable
from tailorbot.services.decisions import DecisionService
from tailorbot.store.base import StoreError
from tests.helpers import bandit_updates
from tests.services.decisions.conftest import ask, runtime_of, tell

CARD_MESSAGE = "my new card has still not arrived, where is it?"


class FailingCounters:
    """The real counter store, but its additions fail (the backend went away mid-request)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def increment(self, *args: Any, **kwargs: Any) -> None:
        raise StoreError("counter store unreachable (injected)")

    def add_vectors(self, *args: Any, **kwargs: Any) -> None:
        raise StoreError("counter store unreachable (injected)")

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def _learned(service: DecisionService) -> tuple[dict[str, float], dict[str, float]]:
    """The experiment's outcome counters summed over its buckets ("personalized/17/feedback"
    counts as "personalized/feedback"), and the bandit's updates by arm."""
    counters = runtime_of(service).stores.counters
    experiment: dict[str, float] = {}
    for key, value in counters.counters(service.experiment.namespace).items():
        parts = key.split("/")
        name = f"{parts[0]}/{parts[-1]}"
        experiment[name] = experiment.get(name, 0.0) + value
    return experiment, bandit_updates(counters, service.models.policy.namespace)


def test_a_counter_failure_after_the_mark_loses_no_reward(service: DecisionService) -> None:
    answer = ask(service, "u-eo", CARD_MESSAGE)
    stores = runtime_of(service).stores
    real = stores.counters
    failing = FailingCounters(real)
    # inject the fault where the service reaches the counters (the store object is frozen)
    object.__setattr__(stores, "counters", failing)
    object.__setattr__(service.models.policy, "store", failing)
    try:
        try:
            first = tell(service, answer.decision_id, rating=5, resolved=True)
        except Unavailable:
            first = None  # refused as a whole: nothing may be marked either
    finally:
        object.__setattr__(stores, "counters", real)
        object.__setattr__(service.models.policy, "store", real)
    experiment, bandit = _learned(service)
    if first is not None and first.applied:
        # applied: then the reward must be in the shared counters already
        assert experiment.get("personalized/feedback") == 1.0
    else:
        assert experiment == {} and not bandit
        retry = tell(service, answer.decision_id, rating=5, resolved=True)
        assert retry.applied
        experiment, bandit = _learned(service)
    assert experiment["personalized/feedback"] == 1.0
    assert experiment["personalized/rating_sum"] == 5.0
    assert sum(bandit.values()) == 1.0
    again = tell(service, answer.decision_id, rating=5, resolved=True)
    assert not again.applied
    assert _learned(service)[0]["personalized/feedback"] == 1.0


@pytest.mark.parametrize("backend", ["sqlite"])
def test_the_mark_and_the_counters_are_one_write(service: DecisionService, backend: str) -> None:
    answer = ask(service, "u-eo2", CARD_MESSAGE)
    decisions = runtime_of(service).stores.decisions
    namespace = service.experiment.namespace
    assert decisions.record_feedback(answer.decision_id, {"rating": 4}, {namespace: {"x": 1.0}})
    assert not decisions.record_feedback(answer.decision_id, {"rating": 4}, {namespace: {"x": 1.0}})
    assert runtime_of(service).stores.counters.counters(namespace) == {"x": 1.0}
