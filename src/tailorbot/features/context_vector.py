"""The bandit's numeric context of a feature view: a fixed set of features in [0, 1].

:func:`context_vector` reads a view (:func:`~tailorbot.features.view.feature_view`) into
:data:`CONTEXT_KEYS`; features/context.py adds the conversation's and the customer's parts.

>>> from tailorbot.features.view import feature_view
>>> view = feature_view(None, {"tier": "gold"}, now=1767263400.0)
>>> sorted(context_vector(view).items())[:3]
[('bias', 1.0), ('csat', 0.5), ('csat_known', 0.0)]
>>> context_vector(view)["tier_vip"], context_vector(view)["segment_new"]
(1.0, 1.0)
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from typing import Any

from tailorbot.compiled import native
from tailorbot.features.params import DAY_S
from tailorbot.features.segments import DEFAULT_RULES, SEGMENTS, SegmentRules

TIER_GROUPS = ("standard", "vip", "other")
SEGMENT_KEYS = tuple((s, f"segment_{s}") for s in SEGMENTS)
TIER_KEYS = tuple((t, f"tier_{t}") for t in TIER_GROUPS)
CONTEXT_KEYS: tuple[str, ...] = (
    "bias",
    "events_24h_log",
    "sessions_30d_log",
    "recency",
    "csat",
    "csat_known",
    "resolution_rate",
    "handoff_rate",
    *(key for _, key in SEGMENT_KEYS),
    *(key for _, key in TIER_KEYS),
)
# log1p(count) is divided by log1p(cap) and clipped to 1.
EVENTS_24H_CAP = 50
SESSIONS_30D_CAP = 30
RECENCY_SCALE_S = 7 * DAY_S
# What the compiled context_vector reads besides the view (its order is context.c's).
_CONSTANTS = (
    CONTEXT_KEYS,
    SEGMENTS,
    TIER_GROUPS,
    float(EVENTS_24H_CAP),
    float(SESSIONS_30D_CAP),
    RECENCY_SCALE_S,
)


def context_vector(
    view: Mapping[str, Any], rules: SegmentRules = DEFAULT_RULES
) -> dict[str, float]:
    """A fixed set of features in [0, 1], keyed by :data:`CONTEXT_KEYS` (in that order)."""
    compiled = getattr(native(), "context_vector", None)  # None: not built, or before
    # None: a value of a type the feature view does not make, or rules of a subclass
    found = (
        compiled(view, rules.vip_tiers, _CONSTANTS)
        if compiled is not None and type(rules) is SegmentRules
        else None
    )
    return found if found is not None else context_vector_in_python(view, rules)


def context_vector_in_python(
    view: Mapping[str, Any], rules: SegmentRules = DEFAULT_RULES
) -> dict[str, float]:
    """:func:`context_vector` in Python: the reference the compiled ``context_vector``
    (csrc/context.c) is tested against, and the pass for what it does not read."""
    csat = view["csat_ewma"]
    resolution = view["resolution_rate_30d"]
    handoff = view["handoff_rate_30d"]
    since = view["time_since_last_contact_s"]
    tier = view.get("tier")
    tier_group = (
        "vip" if rules.is_vip_tier(tier) else ("standard" if tier == "standard" else "other")
    )
    vector = {
        "bias": 1.0,
        "events_24h_log": _log_scaled(view["events_24h"], EVENTS_24H_CAP),
        "sessions_30d_log": _log_scaled(view["sessions_30d"], SESSIONS_30D_CAP),
        "recency": 0.0 if since is None else math.exp(-since / RECENCY_SCALE_S),
        "csat": 0.5 if csat is None else (csat - 1.0) / 4.0,
        "csat_known": 0.0 if csat is None else 1.0,
        "resolution_rate": 0.5 if resolution is None else float(resolution),
        "handoff_rate": 0.0 if handoff is None else float(handoff),
    }
    vector.update(_one_hot(tuple(view["segments"]), tier_group))
    return vector


def _log_scaled(count: float, cap: float) -> float:
    return min(1.0, math.log1p(max(0.0, count)) / math.log1p(cap))


@functools.lru_cache(maxsize=1024)  # a few segment combinations times three tier groups
def _one_hot(matched: tuple[str, ...], tier_group: str) -> dict[str, float]:
    """The context's segment and tier-group indicators, in :data:`CONTEXT_KEYS` order: made
    once per combination (two loops over them were a fifth of the context's cost). Shared:
    copied into each vector, never changed."""
    out = {key: 1.0 if segment in matched else 0.0 for segment, key in SEGMENT_KEYS}
    out.update((key, 1.0 if group == tier_group else 0.0) for group, key in TIER_KEYS)
    return out
