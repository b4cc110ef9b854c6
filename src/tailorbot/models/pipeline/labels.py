"""Labels as events: which logged customer message an ``intent_label`` names, and its label.

A label names a message by its ``event_id`` (``message_event_id``) or by the decision that
answered it (``decision_id``: the decision service logs the message with
``metadata.decision_id``). The newest label of a message wins (by label time, then event id),
so an agent's correction replaces an annotation tool's guess made before it.

>>> events = [
...     {"type": "message", "event_id": "d1-message", "user_id": "u1", "session_id": "s1",
...      "timestamp": "2026-01-01T10:00:00Z", "role": "customer", "text": "where is my card",
...      "intent": "top_up", "confidence": 0.4, "metadata": {"decision_id": "d1"}},
...     {"type": "intent_label", "event_id": "l1", "user_id": "u1", "session_id": "s1",
...      "timestamp": "2026-01-01T11:00:00Z", "intent": "card_arrival", "decision_id": "d1"}]
>>> index = LabelIndex.from_events(events)
>>> index.label_of("d1-message"), index.unresolved
('card_arrival', 0)
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from tailorbot.events.codec import event_epoch


@dataclass(frozen=True, slots=True)
class Label:
    intent: str
    labelled_at: float
    source: str
    event_id: str


@dataclass
class LabelIndex:
    """Customer messages by event id, and the label of each labelled one."""

    messages: dict[str, dict[str, Any]] = field(default_factory=dict)
    labels: dict[str, Label] = field(default_factory=dict)
    unresolved: int = 0  # labels naming a message that is not in the events given

    @classmethod
    def from_events(cls, events: Iterable[Mapping[str, Any]]) -> LabelIndex:
        index = cls()
        by_decision: dict[str, str] = {}
        pending: list[Mapping[str, Any]] = []
        for event in events:
            kind = event.get("type")
            if kind == "message" and event.get("role") == "customer":
                index.messages[event["event_id"]] = dict(event)
                decision = (event.get("metadata") or {}).get("decision_id")
                if isinstance(decision, str):
                    by_decision[decision] = event["event_id"]
            elif kind == "intent_label":
                pending.append(event)
        for event in pending:
            target = event.get("message_event_id") or by_decision.get(
                event.get("decision_id") or ""
            )
            if target is None or target not in index.messages:
                index.unresolved += 1
                continue
            label = Label(
                intent=event["intent"],
                labelled_at=datetime.fromisoformat(event["timestamp"]).timestamp(),
                source=event.get("source", "agent"),
                event_id=event["event_id"],
            )
            known = index.labels.get(target)
            if known is None or (label.labelled_at, label.event_id) > (
                known.labelled_at,
                known.event_id,
            ):
                index.labels[target] = label
        return index

    def label_of(self, message_event_id: str) -> str | None:
        label = self.labels.get(message_event_id)
        return label.intent if label is not None else None

    def unlabelled(self, since: datetime | None = None) -> list[dict[str, Any]]:
        """The messages without a label; with ``since``, those at or after it only."""
        low = since.timestamp() if since is not None else float("-inf")
        return [
            m
            for key, m in self.messages.items()
            if key not in self.labels and event_epoch(m) >= low
        ]


EXPORT_COLUMNS = (
    "message_event_id",
    "decision_id",
    "user_id",
    "session_id",
    "timestamp",
    "text",
    "logged_intent",
    "logged_confidence",
    "model_intent",
    "model_confidence",
    "reason",
    "intent",
)


def annotation_candidates(
    index: LabelIndex, model: Any | None = None, limit: int = 200, since: datetime | None = None
) -> list[dict[str, Any]]:
    """Unlabelled messages (at or after ``since``, when given) worth a human's time, most
    useful first.

    First those where ``model`` (e.g. a newer version) disagrees with the logged intent, then
    the least confident (by the logged confidence, or the model's when it has one). Each row
    has the :data:`EXPORT_COLUMNS`; ``intent`` is left empty for the annotator.
    """
    messages = index.unlabelled(since)
    predictions: list[tuple[str | None, float | None]] = [(None, None)] * len(messages)
    if model is not None and messages:
        probs = model.predict_proba([m["text"] for m in messages])
        labels = list(model.labels)
        predictions = [(labels[int(p.argmax())], float(p.max())) for p in probs]
    rows = []
    for message, (model_intent, model_conf) in zip(messages, predictions, strict=True):
        logged = message.get("intent")
        logged_conf = message.get("confidence")
        disagrees = model_intent is not None and logged is not None and model_intent != logged
        confidence = min(c for c in (logged_conf, model_conf, 1.0) if c is not None)
        rows.append(
            {
                "message_event_id": message["event_id"],
                "decision_id": (message.get("metadata") or {}).get("decision_id", ""),
                "user_id": message["user_id"],
                "session_id": message["session_id"],
                "timestamp": message["timestamp"],
                "text": message["text"],
                "logged_intent": logged or "",
                "logged_confidence": "" if logged_conf is None else round(logged_conf, 4),
                "model_intent": model_intent or "",
                "model_confidence": "" if model_conf is None else round(model_conf, 4),
                "reason": "disagreement" if disagrees else "low_confidence",
                "intent": "",
                "_key": (0 if disagrees else 1, confidence),
            }
        )
    rows.sort(key=lambda r: r["_key"])
    for row in rows:
        del row["_key"]
    return rows[:limit]


class LabelFileError(ValueError):
    """A row of an annotated CSV that cannot become a label event."""


def label_events_from_rows(
    rows: Iterable[Mapping[str, str]],
    now_iso: str,
    source: str = "annotation",
    known_intents: Collection[str] | None = None,
) -> list[dict[str, Any]]:
    """``intent_label`` events for the rows whose ``intent`` column is filled.

    Rows with an empty ``intent`` are skipped (not annotated yet). With ``known_intents``, a
    label naming another intent is refused (a typo would otherwise train a new class). Raises
    :class:`LabelFileError` naming the row and column of the first unusable row.
    """
    from tailorbot.models.intent.dataset import normalize_label

    events = []
    for n, row in enumerate(rows, start=2):  # line 1 is the header
        intent = (row.get("intent") or "").strip()
        if not intent:
            continue
        for column in ("user_id", "session_id"):
            if not (row.get(column) or "").strip():
                raise LabelFileError(f"line {n}: column {column!r} is empty")
        message = (row.get("message_event_id") or "").strip()
        decision = (row.get("decision_id") or "").strip()
        if not (message or decision):
            raise LabelFileError(f"line {n}: message_event_id and decision_id are both empty")
        label = normalize_label(intent)
        if known_intents is not None and label not in known_intents:
            raise LabelFileError(
                f"line {n}: intent {intent!r} is not one the current model or the KB knows "
                "(a typo? --allow-new-intents adds it as a new intent)"
            )
        event: dict[str, Any] = {
            "type": "intent_label",
            "user_id": row["user_id"].strip(),
            "session_id": row["session_id"].strip(),
            "timestamp": now_iso,
            "intent": label,
            "source": source,
        }
        if message:
            event["message_event_id"] = message
        else:
            event["decision_id"] = decision
        events.append(event)
    return events
