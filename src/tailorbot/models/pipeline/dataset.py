"""Point-in-time training sets: each labelled message with the user's features *as of then*.

For every labelled customer message in the window, the user's events are replayed through the
feature state (:mod:`tailorbot.features.state`) in event-time order, and the features are
read just *before* the first event at the message's timestamp: nothing at or after that moment
(the message itself, later messages, the outcome it led to, the label) leaks into the row.
Each row also carries a recency weight ``0.5 ** (age / half_life)``, age measured back from
the window's end, so that recent behaviour counts more when a model uses the weights.

Profiles (tier, language, region, operator attributes) come from the profile store as they are
now: they are attributes, not history; the log does not keep their past values. A user whose
stored profile withholds analytics consent (``consent.analytics`` false) is left out whole:
none of their events, labels or rows is used.

>>> events = [
...     {"type": "message", "event_id": "m1", "user_id": "u1", "session_id": "s1",
...      "timestamp": "2026-01-01T10:00:00Z", "role": "customer", "text": "card?",
...      "intent": "card_arrival", "confidence": 0.9},
...     {"type": "message", "event_id": "m2", "user_id": "u1", "session_id": "s1",
...      "timestamp": "2026-01-01T10:05:00Z", "role": "customer", "text": "still nothing",
...      "intent": "card_arrival", "confidence": 0.3},
...     {"type": "intent_label", "event_id": "l2", "user_id": "u1", "session_id": "s1",
...      "timestamp": "2026-01-01T12:00:00Z", "intent": "card_arrival",
...      "message_event_id": "m2"}]
>>> rows = build_dataset(events, half_life_days=30)
>>> [(r["text"], r["intent"], r["features"]["customer_messages_total"]) for r in rows]
[('still nothing', 'card_arrival', 1)]
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from tailorbot.events.profile import consents_to_analytics
from tailorbot.features.context_vector import context_vector
from tailorbot.features.params import DAY_S, FeatureParams
from tailorbot.features.state import apply_outcome, new_state
from tailorbot.features.view import feature_view
from tailorbot.models.intent.dataset import MISSING_FIELDS, DatasetError, read_jsonl
from tailorbot.models.pipeline.labels import LabelIndex
from tailorbot.store.base import FeatureRecord

DEFAULT_HALF_LIFE_DAYS = 30.0
# The view's fields a row keeps (the context vector is kept whole).
ROW_FEATURES = (
    "events_total",
    "customer_messages_total",
    "customer_messages_24h",
    "time_since_last_contact_s",
    "recent_intents",
    "segment",
    "csat_ewma",
    "sessions_30d",
    "handoff_rate_30d",
    "resolution_rate_30d",
)
Item = TypeVar("Item", bound=Mapping[str, Any])


def consenting(
    items: Iterable[Item], profiles: Mapping[str, Mapping[str, Any]] | None
) -> list[Item]:
    """``items`` (events or decision records, each naming its ``user_id``) less those of the
    users whose profile in ``profiles`` withholds analytics consent: the one rule every
    learning path applies (their events "are not used for training")."""
    opted_out = {u for u, p in (profiles or {}).items() if not consents_to_analytics(p)}
    return [item for item in items if item.get("user_id") not in opted_out]


def build_dataset(
    events: Iterable[Mapping[str, Any]],
    profiles: Mapping[str, Mapping[str, Any]] | None = None,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    half_life_days: float = DEFAULT_HALF_LIFE_DAYS,
    params: FeatureParams | None = None,
) -> list[dict[str, Any]]:
    """Rows for the labelled customer messages with ``since <= timestamp < until``.

    ``events`` may hold events outside the window (earlier history feeds the features).
    Every event of a user whose profile in ``profiles`` has ``consent.analytics`` false is
    dropped first (their events "are not used for training"): no row, label or feature of
    theirs. Rows come out in event-time order.
    """
    if half_life_days <= 0:
        raise ValueError(f"half_life_days must be > 0, got {half_life_days!r}")
    params = params or FeatureParams()
    events = consenting(events, profiles)
    index = LabelIndex.from_events(events)
    low = since.timestamp() if since is not None else float("-inf")
    high = until.timestamp() if until is not None else float("inf")
    by_user: dict[str, list[tuple[float, str, Mapping[str, Any]]]] = {}
    for event in events:
        ts = datetime.fromisoformat(event["timestamp"]).timestamp()
        by_user.setdefault(event["user_id"], []).append((ts, event["event_id"], event))
    rows: list[dict[str, Any]] = []
    for user, timeline in by_user.items():
        timeline.sort(key=lambda item: item[:2])
        profile = (profiles or {}).get(user)
        rows.extend(_user_rows(user, timeline, profile, index, low, high, params))
    rows.sort(key=lambda r: (r["epoch"], r["message_event_id"]))
    end = high if high != float("inf") else max((r["epoch"] for r in rows), default=0.0)
    for row in rows:
        age_days = max(0.0, end - row["epoch"]) / DAY_S
        row["weight"] = round(0.5 ** (age_days / half_life_days), 6)
    return rows


def _user_rows(
    user: str,
    timeline: Sequence[tuple[float, str, Mapping[str, Any]]],
    profile: Mapping[str, Any] | None,
    index: LabelIndex,
    low: float,
    high: float,
    params: FeatureParams,
) -> list[dict[str, Any]]:
    """Replay one user's events; snapshot the features before each labelled message's time."""
    state = new_state()
    sessions: set[str] = set()  # sessions seen before: a message in a new one is "returning"
    rows: list[dict[str, Any]] = []
    i = 0
    while i < len(timeline):
        ts = timeline[i][0]
        j = i
        while j < len(timeline) and timeline[j][0] == ts:
            j += 1
        same_moment = timeline[i:j]
        labelled = [
            e for _, eid, e in same_moment if eid in index.labels and e.get("type") == "message"
        ]
        if labelled and low <= ts < high:
            snapshot = _features(user, state, profile, ts)
            for message in labelled:
                returning = bool(sessions - {message["session_id"]})
                rows.append(_row(message, index, profile, snapshot, ts, returning))
        for _, _, event in same_moment:
            apply_outcome(state, dict(event), params, ts)
            sessions.add(event["session_id"])
        i = j
    return rows


def _features(
    user: str, state: dict[str, Any], profile: Mapping[str, Any] | None, ts: float
) -> dict[str, Any]:
    record = FeatureRecord(user, state, partition=0, offset=0, event_time=ts, updated_at=ts)
    view = feature_view(record, profile, now=ts)
    features = {name: view.get(name) for name in ROW_FEATURES}
    features["context"] = context_vector(view)
    return json.loads(json.dumps(features))  # a copy: the state keeps changing


def _row(
    message: Mapping[str, Any],
    index: LabelIndex,
    profile: Mapping[str, Any] | None,
    features: dict[str, Any],
    ts: float,
    returning: bool,
) -> dict[str, Any]:
    label = index.labels[message["event_id"]]
    profile = profile or {}
    return {
        "message_event_id": message["event_id"],
        "decision_id": (message.get("metadata") or {}).get("decision_id"),
        "user_id": message["user_id"],
        "timestamp": message["timestamp"],
        "epoch": ts,
        "text": message["text"],
        "intent": label.intent,
        "label_source": label.source,
        "logged_intent": message.get("intent"),
        "logged_confidence": message.get("confidence"),
        "channel": message.get("channel") or "chat",
        "tier": profile.get("tier", "standard"),
        "language": profile.get("language", "en"),
        "region": profile.get("region"),
        "attributes": dict(profile.get("attributes") or {}),
        "returning": returning,
        "features": features,
    }


def write_rows(rows: Iterable[Mapping[str, Any]], path: str | Path) -> int:
    """Write rows as JSONL; returns how many."""
    n = 0
    with Path(path).open("w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, sort_keys=True) + "\n")
            n += 1
    return n


def read_rows(path: str | Path) -> list[dict[str, Any]]:
    """Rows written by :func:`write_rows` (a built dataset carries ``epoch`` and ``intent``);
    a :class:`~tailorbot.models.intent.dataset.DatasetError` names a bad line."""
    rows = []
    for number, row in read_jsonl(path):
        if "text" not in row or "intent" not in row:
            raise DatasetError(f"{path}:{number}: {MISSING_FIELDS}")
        rows.append(row)
    return rows
