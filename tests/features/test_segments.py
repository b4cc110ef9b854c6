from __future__ import annotations

import pytest

from tailorbot.features.segments import SEGMENTS, SegmentRules

DAY = 86400.0
NOW = 100 * DAY
RULES = SegmentRules()


def view(**overrides: object) -> dict:
    """A long-standing standard-tier user with nothing remarkable."""
    base = {
        "tier": "standard",
        "csat_ewma": 4.5,
        "unresolved_streak": 0,
        "sessions_7d": 1,
        "first_seen": NOW - 60 * DAY,
        "as_of": NOW,
    }
    return base | overrides


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({}, ["regular"]),
        ({"csat_ewma": 2.5}, ["at_risk"]),
        ({"csat_ewma": 2.51}, ["regular"]),
        ({"csat_ewma": None}, ["regular"]),
        ({"unresolved_streak": 2}, ["at_risk"]),
        ({"unresolved_streak": 1}, ["regular"]),
        ({"tier": "Gold"}, ["vip"]),
        ({"tier": "premium"}, ["regular"]),
        ({"sessions_7d": 3}, ["frequent_contact"]),
        ({"first_seen": NOW - 6 * DAY}, ["new"]),
        ({"first_seen": None}, ["new"]),
        ({"first_seen": NOW - 7 * DAY}, ["regular"]),
        (
            {"tier": "vip", "sessions_7d": 5, "csat_ewma": 1.0},
            ["at_risk", "vip", "frequent_contact"],
        ),
    ],
)
def test_rules(overrides: dict, expected: list[str]) -> None:
    assert RULES.segments(view(**overrides)) == expected
    assert RULES.segment(view(**overrides)) == expected[0]


def test_matches_come_in_priority_order_and_thresholds_are_settable() -> None:
    rules = SegmentRules(frequent_sessions_7d=1, vip_tiers=frozenset({"premium"}))
    found = rules.segments(view(tier="premium", first_seen=NOW))
    assert found == ["vip", "frequent_contact", "new"]
    assert found == [s for s in SEGMENTS if s in found]
