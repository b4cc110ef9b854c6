"""Per-decision rows for the audit: what the bot did and how the customer reacted.

A decision is found in the log through its customer message (``metadata.decision_id``); the
outcome events the feedback endpoint logs carry the same ``metadata.decision_id``. What the
log does not hold (the fallback reason, the arm, the offered articles) comes from the decision
record, looked up with ``decision_of``.

A user whose profile withholds analytics consent (``consent.analytics`` false, read with
:func:`~tailorbot.events.profile.consents_to_analytics`, as the training data does) is left
out: no row for their decisions, no outcome of theirs counted.

>>> events = [
...     {"type": "message", "event_id": "d1-message", "user_id": "u1", "session_id": "s1",
...      "timestamp": "2026-01-01T10:00:00Z", "role": "customer", "text": "hi",
...      "metadata": {"decision_id": "d1"}},
...     {"type": "rating", "event_id": "d1-rating", "user_id": "u1", "session_id": "s1",
...      "timestamp": "2026-01-01T10:01:00Z", "score": 4, "metadata": {"decision_id": "d1"}}]
>>> record = {"fallback": None, "arm": "personalized", "articles": ["kb-1"]}
>>> row = decision_rows(events, {}, lambda d: record)[0]
>>> row["rating"], row["fallback"], row["arm"], row["hit"]
(4, False, 'personalized', False)
>>> decision_rows(events, {"u1": {"consent": {"analytics": False}}}, lambda d: record)
[]
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from tailorbot.events.profile import consents_to_analytics
from tailorbot.models.intent.base import OUT_OF_SCOPE_REASONS


def decision_rows(
    events: Iterable[Mapping[str, Any]],
    profiles: Mapping[str, Mapping[str, Any]],
    decision_of: Callable[[str], Mapping[str, Any] | None],
) -> list[dict[str, Any]]:
    """One row per logged decision, in event-time order (``events`` must be in that order),
    leaving out every event of a user who withheld analytics consent in ``profiles``."""
    rows: dict[str, dict[str, Any]] = {}
    sessions_seen: dict[str, set[str]] = {}
    for event in events:
        user, session = event["user_id"], event["session_id"]
        if not consents_to_analytics(profiles.get(user)):
            continue
        decision = (event.get("metadata") or {}).get("decision_id")
        kind = event["type"]
        if kind == "message" and event.get("role") == "customer" and decision:
            record = decision_of(decision)
            if record is None or record.get("user_id", user) == user:
                returning = bool(sessions_seen.get(user, set()) - {session})
                rows[decision] = _new_row(event, profiles.get(user) or {}, record)
                rows[decision]["returning"] = returning
        elif decision in rows and rows[decision]["user_id"] == user:
            _add_outcome(rows[decision], event)  # never another user's events
        sessions_seen.setdefault(user, set()).add(session)
    return list(rows.values())


def _new_row(
    message: Mapping[str, Any], profile: Mapping[str, Any], record: Mapping[str, Any] | None
) -> dict[str, Any]:
    record = record or {}
    reason = record.get("fallback")
    offered = list(record.get("articles") or [])
    return {
        "decision_id": (message.get("metadata") or {}).get("decision_id"),
        "user_id": message["user_id"],
        "channel": message.get("channel") or "chat",
        "tier": profile.get("tier", "standard"),
        "language": profile.get("language", "en"),
        "region": profile.get("region"),
        "attributes": dict(profile.get("attributes") or {}),
        "arm": record.get("arm"),
        "fallback": None if not record else reason is not None,
        "handoff": None if not record else reason in OUT_OF_SCOPE_REASONS,
        "offered": offered,
        "rating": None,
        "resolved": None,
        "hit": False if offered else None,  # an offered article found helpful or resolving
    }


def _add_outcome(row: dict[str, Any], event: Mapping[str, Any]) -> None:
    kind = event["type"]
    offered = row["offered"]
    if kind == "rating":
        row["rating"] = event["score"]
    elif kind == "resolution":
        row["resolved"] = bool(event["resolved"])
        if offered:
            row["hit"] = row["hit"] or event.get("article_id") in offered
    elif kind == "handoff":
        row["handoff"] = True
    elif kind == "article_feedback" and offered:
        row["hit"] = row["hit"] or (event["helpful"] and event["article_id"] in offered)
