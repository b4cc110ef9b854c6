"""A feedback or a decision that races an erasure of its user builds the user no new feature
record."""

from __future__ import annotations

from typing import Any

import pytest

from tailorbot.services.decisions.service import DecisionService
from tests.services.decisions.conftest import ask, runtime_of, tell


def test_a_feedback_read_before_an_erasure_adds_nothing_after_it(
    service: DecisionService, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The feedback reads the decision, then the user is erased (another process, say),
    then the feedback appends its events: above the erasure's watermark, but dated when the
    feedback arrived, before the erasure, so the worker drops them."""
    runtime = runtime_of(service)
    answer = ask(service, "racer", "my card has not arrived yet")
    handler = service._feedback
    read = handler._read

    def read_then_erased(decision_ids: Any) -> Any:
        decisions = read(decision_ids)
        runtime.users.erase_user("racer")
        return decisions

    monkeypatch.setattr(handler, "_read", read_then_erased)
    tell(service, answer.decision_id, rating=5, resolved=True)
    worker = runtime.stream_worker()
    while worker.run_once():
        pass
    assert worker.counts["erased"] >= 2  # the rating and the resolution
    assert worker.counts["applied"] == 0
    assert runtime.stores.features.get("racer") is None


def test_a_decision_that_read_the_user_before_an_erasure_adds_nothing_after_it(
    service: DecisionService, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The decision reads the user, then the user is erased (another process), then the
    recorder appends the decision's message event and writes its record: both dated when the
    request arrived, before the erasure, so the worker drops the event and the store refuses
    the record."""
    runtime = runtime_of(service)
    read = service._read_user

    def read_then_erased(user_id: str, *read_ahead: Any) -> Any:
        found = read(user_id, *read_ahead)
        runtime.users.erase_user(user_id)
        return found

    monkeypatch.setattr(service, "_read_user", read_then_erased)
    answer = ask(service, "late", "my card has not arrived yet")
    # its record, made before the erasure, is refused by the store (queued in another
    # process, it would have been written after the erasure's flush)
    assert runtime.stores.decisions.get(answer.decision_id) is None
    worker = runtime.stream_worker()
    while worker.run_once():
        pass
    assert worker.counts["erased"] == 1 and worker.counts["applied"] == 0
    assert runtime.stores.features.get("late") is None
