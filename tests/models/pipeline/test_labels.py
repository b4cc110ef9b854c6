from __future__ import annotations

import pytest

from tailorbot.events.schema import EVENT_ADAPTER
from tailorbot.models.pipeline.labels import (
    LabelFileError,
    LabelIndex,
    annotation_candidates,
    label_events_from_rows,
)


def _message(i: int, confidence: float, intent: str = "top_up") -> dict:
    return {
        "type": "message",
        "event_id": f"d{i}-message",
        "user_id": "u1",
        "session_id": "s1",
        "timestamp": f"2026-01-01T10:0{i}:00Z",
        "role": "customer",
        "text": f"text {i}",
        "intent": intent,
        "confidence": confidence,
        "metadata": {"decision_id": f"d{i}"},
    }


def _label(eid: str, at: str, intent: str, **target: str) -> dict:
    return {
        "type": "intent_label",
        "event_id": eid,
        "user_id": "u1",
        "session_id": "s1",
        "timestamp": at,
        "intent": intent,
        **target,
    }


def test_labels_resolve_by_event_id_or_decision_id_and_the_newest_wins() -> None:
    events = [
        _message(1, 0.9),
        _message(2, 0.5),
        _label("l1", "2026-01-02T00:00:00Z", "card_arrival", decision_id="d1"),
        _label("l2", "2026-01-03T00:00:00Z", "top_up", message_event_id="d1-message"),
        _label("l3", "2026-01-02T00:00:00Z", "change_pin", message_event_id="d2-message"),
        _label("l4", "2026-01-02T00:00:00Z", "change_pin", decision_id="unknown"),
    ]
    index = LabelIndex.from_events(events)
    assert index.label_of("d1-message") == "top_up"  # the later correction
    assert index.label_of("d2-message") == "change_pin"
    assert index.unresolved == 1


def test_candidates_put_disagreements_first_then_the_least_confident() -> None:
    class Model:  # a fitted model would do the same; this one always says "card_arrival"
        labels = ("card_arrival", "top_up")

        def predict_proba(self, texts: list[str]):  # type: ignore[no-untyped-def]
            import numpy as np

            return np.tile([0.9, 0.1], (len(texts), 1))

    events = [_message(1, 0.9), _message(2, 0.3), _message(3, 0.6, intent="card_arrival")]
    rows = annotation_candidates(LabelIndex.from_events(events), Model())
    assert [r["message_event_id"] for r in rows] == ["d2-message", "d1-message", "d3-message"]
    assert [r["reason"] for r in rows] == ["disagreement", "disagreement", "low_confidence"]
    plain = annotation_candidates(LabelIndex.from_events(events), None, limit=2)
    assert [r["message_event_id"] for r in plain] == ["d2-message", "d3-message"]


def test_filled_rows_become_valid_label_events() -> None:
    rows = [
        {
            "message_event_id": "m1",
            "decision_id": "",
            "user_id": "u1",
            "session_id": "s1",
            "intent": "Card Arrival",
        },
        {
            "message_event_id": "",
            "decision_id": "d2",
            "user_id": "u1",
            "session_id": "s2",
            "intent": "",
        },
        {
            "message_event_id": "",
            "decision_id": "d3",
            "user_id": "u2",
            "session_id": "s3",
            "intent": "top_up",
        },
    ]
    events = label_events_from_rows(rows, "2026-01-05T00:00:00Z")
    assert [e.get("message_event_id") or e.get("decision_id") for e in events] == ["m1", "d3"]
    assert events[0]["intent"] == "card_arrival"
    for event in events:
        EVENT_ADAPTER.validate_python(event)


def test_an_unusable_row_names_its_line_and_column() -> None:
    rows = [{"message_event_id": "m1", "user_id": "", "session_id": "s1", "intent": "x"}]
    with pytest.raises(LabelFileError, match="line 2: column 'user_id' is empty"):
        label_events_from_rows(rows, "2026-01-05T00:00:00Z")


def test_a_label_must_name_a_message() -> None:
    with pytest.raises(ValueError, match="needs message_event_id or decision_id"):
        EVENT_ADAPTER.validate_python(_label("l", "2026-01-01T00:00:00Z", "x"))
