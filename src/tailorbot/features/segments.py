"""User segments from documented rules over the feature view (docs/features.md, "Segments").

A user can match several rules; ``segments`` lists all matches in priority order and the
*primary* segment is the first of them (``regular`` when none match).

>>> rules = SegmentRules()
>>> view = {"tier": "gold", "csat_ewma": 2.0, "unresolved_streak": 0, "sessions_7d": 1,
...         "first_seen": 0.0, "as_of": 30 * 86400.0}
>>> rules.segments(view)
['at_risk', 'vip']
>>> rules.segment(view)
'at_risk'
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tailorbot.features.params import DAY_S

# Priority order; the primary segment is the first that matches.
SEGMENTS = ("at_risk", "vip", "frequent_contact", "new", "regular")
VIP_TIERS = frozenset({"vip", "gold", "platinum", "enterprise"})


@dataclass(frozen=True, slots=True)
class SegmentRules:
    """Thresholds of the segment rules.

    * ``at_risk``: CSAT EWMA <= ``at_risk_csat``, or at least ``at_risk_unresolved_streak``
      unresolved sessions in a row (newest first, within 30 days).
    * ``vip``: the profile tier is one of ``vip_tiers`` (case-insensitive).
    * ``frequent_contact``: at least ``frequent_sessions_7d`` sessions in the last 7 days.
    * ``new``: no event yet, or the first event is less than ``new_for_s`` old.
    """

    at_risk_csat: float = 2.5
    at_risk_unresolved_streak: int = 2
    vip_tiers: frozenset[str] = VIP_TIERS
    frequent_sessions_7d: int = 3
    new_for_s: float = 7 * DAY_S

    def is_vip_tier(self, tier: str | None) -> bool:
        return tier is not None and tier.lower() in self.vip_tiers

    def segments(self, view: Mapping[str, Any]) -> list[str]:
        """Every matching segment, in priority order (``["regular"]`` when none)."""
        found = []
        csat = view.get("csat_ewma")
        if (csat is not None and csat <= self.at_risk_csat) or (
            view.get("unresolved_streak", 0) >= self.at_risk_unresolved_streak
        ):
            found.append("at_risk")
        if self.is_vip_tier(view.get("tier")):
            found.append("vip")
        if view.get("sessions_7d", 0) >= self.frequent_sessions_7d:
            found.append("frequent_contact")
        first_seen = view.get("first_seen")
        if first_seen is None or view["as_of"] - first_seen < self.new_for_s:
            found.append("new")
        return found or ["regular"]

    def segment(self, view: Mapping[str, Any]) -> str:
        """The primary segment: the first match in :data:`SEGMENTS` order."""
        return self.segments(view)[0]


DEFAULT_RULES = SegmentRules()  # the documented thresholds (docs/features.md, "Segments")
