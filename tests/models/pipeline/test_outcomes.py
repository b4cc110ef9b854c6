"""The audit's per-decision rows (``decision_rows``) honour analytics consent like the
training data (``build_dataset``) does."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from tailorbot.models.pipeline.audit import audit
from tailorbot.models.pipeline.outcomes import decision_rows

START = datetime(2026, 1, 1, 10, tzinfo=UTC)


def _decision(user: str, decision: str, minute: int) -> list[dict[str, Any]]:
    """A customer message that led to ``decision``, then its rating and resolution."""

    def event(kind: str, offset: int, **fields: Any) -> dict[str, Any]:
        return {
            "type": kind,
            "event_id": f"{decision}-{kind}",
            "user_id": user,
            "session_id": f"{user}-s1",
            "timestamp": (START + timedelta(minutes=minute + offset)).isoformat(),
            "metadata": {"decision_id": decision},
            **fields,
        }

    happy = user == "quiet"  # the withheld user's outcomes differ from everyone else's
    return [
        event("message", 0, role="customer", text="where is my card"),
        event("rating", 1, score=5 if happy else 2),
        event("resolution", 2, resolved=happy, article_id="kb-1" if happy else "kb-9"),
    ]


def _record(decision: str) -> dict[str, Any]:
    return {"fallback": None, "arm": "personalized", "articles": ["kb-1"]}


def test_decisions_of_a_user_who_withheld_analytics_consent_are_left_out() -> None:
    events = [
        *_decision("open", "d1", 0),  # no profile: consent is assumed
        *_decision("quiet", "d2", 5),  # said no to analytics
        *_decision("private", "d3", 10),  # said no to personalization only: still counted
        *_decision("open", "d4", 15),
    ]
    profiles = {
        "quiet": {"tier": "gold", "consent": {"analytics": False}},
        "private": {"consent": {"personalization": False, "analytics": True}},
    }
    rows = decision_rows(events, profiles, _record)
    assert [(r["decision_id"], r["user_id"]) for r in rows] == [
        ("d1", "open"),
        ("d3", "private"),
        ("d4", "open"),
    ]
    # none of the withheld user's outcomes is counted, on any row
    assert [(r["rating"], r["resolved"], r["hit"]) for r in rows] == [(2, False, False)] * 3
    report = audit([], rows, dimensions=("tier",), min_rows=1)
    assert report["overall"]["n_decisions"] == 3
    assert report["overall"]["csat_by_arm"]["personalized"]["value"] == 2.0
    assert [s["segment"] for s in report["dimensions"]["tier"]] == ["standard"]


def test_another_users_events_are_never_a_decisions_outcome() -> None:
    """An event names its decision in its metadata; only the decision's own user's events
    count for it (a rating of att1 naming vic1's decision is att1's, not an outcome)."""
    victim = _decision("vic1", "d1", 0)[:1]  # the decision, no outcome yet
    intruder = [
        {**event, "user_id": "att1", "session_id": "att1-s1"}
        for event in _decision("att1", "d1", 1)
    ]

    def record(decision: str) -> dict[str, Any]:
        return {**_record(decision), "user_id": "vic1"}

    rows = decision_rows([*victim, *intruder], {}, record)
    assert [(r["decision_id"], r["user_id"]) for r in rows] == [("d1", "vic1")]
    assert (rows[0]["rating"], rows[0]["resolved"], rows[0]["hit"]) == (None, None, False)


def test_the_audits_figures_by_arm_are_clustered_by_user() -> None:
    """Each user rates every contact alike (their contacts are correlated): the interval is
    the one over users, wider than one that took the 60 contacts as independent."""
    rows = [
        {"user_id": f"u{u}", "arm": "control", "rating": 1 + u % 5, "resolved": u % 2 == 0}
        for u in range(20)
        for _ in range(3)
    ]
    report = audit([], rows, dimensions=(), min_rows=1)
    csat = report["overall"]["csat_by_arm"]["control"]
    assert (csat["n"], csat["users"], csat["value"]) == (60, 20, 3.0)
    ratings = [float(r["rating"]) for r in rows]
    naive = 1.959964 * (sum((x - 3.0) ** 2 for x in ratings) / 59 / 60) ** 0.5
    assert csat["high"] - csat["low"] > 1.5 * 2 * naive  # about sqrt(3) times as wide
    resolution = report["overall"]["resolution_by_arm"]["control"]
    assert resolution["value"] == 0.5 and resolution["high"] - resolution["low"] > 0.4
