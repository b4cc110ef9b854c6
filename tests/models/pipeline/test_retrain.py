"""The retrain check: a failed run does not use up its labels."""

from __future__ import annotations

from pathlib import Path

from tailorbot.models.pipeline.audit import AuditGate
from tailorbot.models.pipeline.retrain import RetrainPolicy, last_outcome, retrain_once


def _labelled(count: int) -> list[dict]:
    """``count`` labelled messages, each of its own intent: too few to train on."""
    events = []
    for i in range(count):
        at = f"2026-01-01T10:0{i}:00+00:00"
        events.append({"type": "message", "event_id": f"m{i}", "user_id": f"u{i}",
                       "session_id": f"s{i}", "timestamp": at, "role": "customer",
                       "text": f"text {i}", "intent": "x", "confidence": 0.5})  # fmt: skip
        events.append({"type": "intent_label", "event_id": f"l{i}", "user_id": f"u{i}",
                       "session_id": f"s{i}", "timestamp": at.replace("T10", "T11"),
                       "intent": f"i{i}", "message_event_id": f"m{i}"})  # fmt: skip
    return events


def test_a_failed_retrain_keeps_its_labels_new_so_the_next_check_retries(tmp_path: Path) -> None:
    events, policy = _labelled(5), RetrainPolicy(min_labels=3)
    for _ in range(2):
        outcome = retrain_once(tmp_path, events, {}, policy=policy, gate=AuditGate(),
                               train_options={"search": False})  # fmt: skip
        assert outcome.outcome == "failed", outcome
        assert outcome.why.startswith("5 new labels (threshold 3); training failed")
    recorded = last_outcome(tmp_path)
    assert recorded is not None and recorded["labels_total"] == 0  # none trained on yet
