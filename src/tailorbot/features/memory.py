"""Per-customer memory: what happened after each response variant and each article.

Feedback events (``rating``, ``resolution``, ``article_feedback``) become **outcomes**
``[time, variant, article, reward]`` with a reward in [0, 1]: a rating ``s`` gives
``(s - 1) / 4``, a resolution 1 or 0, a helpful vote 1 or 0. The decision service writes the
variant and the article its reply was about into the feedback events' ``metadata``
(``variant``, ``article``); a resolution or a vote naming an ``article_id`` is about that
article. A vote rewards the article, not the wording (its variant is empty). An event that
names neither a variant nor an article leaves no outcome.

Order-independence: outcomes above the user's cut are kept in one sorted list; below it they
are folded into per-variant and per-article totals (count and sum). Rewards are multiples of
1/4, so the sums are exact in floating point and do not depend on the order of addition. The
**recent** figures weigh each outcome in the 30-day window by ``0.5 ** (age / 7 d)`` and are
computed from the sorted list at read time, so they are the same in every arrival order.

>>> s = {"outcomes": [], "outcome_totals": {"v": {}, "a": {}}}
>>> ev = {"type": "rating", "score": 5, "metadata": {"variant": "step_by_step", "article": "kb-1"}}
>>> record_outcome(s, ev, 100.0)
True
>>> mem = memory_view(s, now=100.0)
>>> mem["variant_rewards"]["step_by_step"]
{'n': 1, 'mean': 1.0, 'recent_weight': 1.0, 'recent_mean': 1.0}
"""

from __future__ import annotations

import math
from bisect import insort
from collections.abc import Mapping, Sequence
from typing import Any

from tailorbot.compiled import native
from tailorbot.features.params import DAY_S, RETENTION_S

HALF_LIFE_S = 7 * DAY_S  # the weight of an outcome halves every week
MAX_OUTCOMES = 200  # retained outcomes per user; the oldest beyond are folded early
DECAY_PER_S = math.log(2.0) / HALF_LIFE_S  # an outcome weighs exp(-age_s * DECAY_PER_S)
MAX_KEYS = 200  # variants, and articles, in the folded totals (the smallest count goes)

# Outcome fields.
TIME, VARIANT, ARTICLE, REWARD = 0, 1, 2, 3


def new_memory() -> dict[str, Any]:
    return {"outcomes": [], "outcome_totals": {"v": {}, "a": {}}}


def outcome_of(event: Mapping[str, Any]) -> tuple[str, str, float] | None:
    """``(variant, article, reward)`` of a feedback event; None when it says nothing."""
    kind = event.get("type")
    meta = event.get("metadata") or {}
    variant = _text(meta.get("variant"))
    article = _text(meta.get("article"))
    if kind == "rating":
        reward = (int(event["score"]) - 1) / 4
    elif kind == "resolution":
        reward = 1.0 if event.get("resolved") else 0.0
        article = _text(event.get("article_id")) or article
    elif kind == "article_feedback":
        reward = 1.0 if event.get("helpful") else 0.0
        variant, article = "", _text(event.get("article_id"))
    else:
        return None
    if not variant and not article:
        return None
    return variant, article, reward


def record_outcome(state: dict[str, Any], event: Mapping[str, Any], ts: float) -> bool:
    """Keep the event's outcome (call once per applied event); False when it has none."""
    found = outcome_of(event)
    if found is None:
        return False
    outcomes = state.setdefault("outcomes", [])  # absent from states written before it
    state.setdefault("outcome_totals", {"v": {}, "a": {}})
    insort(outcomes, [ts, *found])
    if len(outcomes) > MAX_OUTCOMES:
        fold_until(state, outcomes[len(outcomes) - MAX_OUTCOMES][TIME], strictly_before=True)
    return True


def fold_until(state: dict[str, Any], cut: float, strictly_before: bool = False) -> None:
    """Fold the outcomes at or below ``cut`` (below it, with ``strictly_before``) into the
    totals."""
    outcomes = state.get("outcomes")
    if not outcomes:
        return
    k = 0
    while k < len(outcomes) and (
        outcomes[k][TIME] < cut if strictly_before else outcomes[k][TIME] <= cut
    ):
        k += 1
    if not k:
        return
    totals = state["outcome_totals"]
    for _, variant, article, reward in outcomes[:k]:
        if variant:
            _add(totals["v"], variant, reward)
        if article:
            _add(totals["a"], article, reward)
    del outcomes[:k]


def _add(totals: dict[str, list[float]], key: str, reward: float) -> None:
    entry = totals.get(key)
    if entry is None:
        totals[key] = [1, reward]
        if len(totals) > MAX_KEYS:
            del totals[min(totals, key=lambda k: (totals[k][0], k))]
    else:
        entry[0] += 1
        entry[1] += reward


def memory_view(state: Mapping[str, Any], now: float) -> dict[str, Any]:
    """``variant_rewards`` and ``article_rewards`` as of ``now`` (see docs/features.md):
    summed up in C (``csrc/memory.c``) where the extension is built and the state holds
    what the stream worker writes, else by :func:`memory_in_python`, the reference."""
    totals = state.get("outcome_totals") or {"v": {}, "a": {}}
    outcomes = state.get("outcomes", ())
    if not (outcomes or totals["v"] or totals["a"]):  # no feedback yet: most users
        return {"variant_rewards": {}, "article_rewards": {}}
    compiled = getattr(native(), "memory_summaries", None)  # None: not built, or before
    found = None
    if compiled is not None:
        # None: a value of a type the stream worker does not write (or an int now, which
        # Python compares exactly); Python reads it
        found = compiled(outcomes, totals["v"], totals["a"], now, now - RETENTION_S, DECAY_PER_S)
    if found is None:
        found = memory_in_python(outcomes, totals, now)
    return {"variant_rewards": found[0], "article_rewards": found[1]}


def memory_in_python(
    outcomes: Sequence[Sequence[Any]],
    totals: Mapping[str, Mapping[str, Sequence[float]]],
    now: float,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(variant_rewards, article_rewards)`` of the outcomes and the folded totals."""
    by_variant: dict[str, list[float]] = {k: [v[0], v[1], 0.0, 0.0] for k, v in totals["v"].items()}
    by_article: dict[str, list[float]] = {k: [v[0], v[1], 0.0, 0.0] for k, v in totals["a"].items()}
    oldest = now - RETENTION_S
    for ts, variant, article, reward in outcomes:
        weight = math.exp((ts - now) * DECAY_PER_S) if oldest < ts <= now else 0.0
        if variant:
            _count(by_variant, variant, reward, weight)
        if article:
            _count(by_article, article, reward, weight)
    return (
        {k: _summary(v) for k, v in sorted(by_variant.items())},
        {k: _summary(v) for k, v in sorted(by_article.items())},
    )


def _count(table: dict[str, list[float]], key: str, reward: float, weight: float) -> None:
    entry = table.get(key)
    if entry is None:
        table[key] = [1, reward, weight, weight * reward]
    else:
        entry[0] += 1
        entry[1] += reward
        entry[2] += weight
        entry[3] += weight * reward


def _summary(entry: list[float]) -> dict[str, Any]:
    n, total, weight, weighted = entry
    return {
        "n": int(n),
        "mean": total / n if n else None,
        "recent_weight": weight,
        "recent_mean": weighted / weight if weight > 0 else None,
    }


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


# --- segment-level memory: shared counters per segment x variant ---------------------------

NS_SEGMENT_VARIANT = "memory:segment_variant"
ALL_SEGMENTS = "all"
OUTCOME_EVENT_TYPES = frozenset({"rating", "resolution"})  # the ones naming a variant
# The A/B arm whose outcomes the segment counters learn from (the decision service writes a
# decision's arm into its feedback events' metadata). The control's bandit learns from its
# own arm only, so the personalized policy's segment priors must too: counting both arms gave
# it about twice the data of the control at a 50 % holdout.
PERSONALIZED_ARM = "personalized"


def segment_deltas(
    event: Mapping[str, Any], view: Mapping[str, Any] | None
) -> dict[str, dict[str, float]]:
    """Counter deltas ``{segment}|{variant}|n`` and ``|sum`` (and the same under ``all``) for
    a feedback event naming a variant, with the user's segment *before* the event; nothing
    for an outcome of a decision another A/B arm than :data:`PERSONALIZED_ARM` made (an
    event without an arm, e.g. from a bot's own variants, counts).

    >>> segment_deltas({"type": "rating", "score": 5, "metadata": {"variant": "concise"}},
    ...                {"segment": "vip"})["memory:segment_variant"]["vip|concise|sum"]
    1.0
    >>> segment_deltas({"type": "rating", "score": 5,
    ...                 "metadata": {"variant": "concise", "arm": "control"}}, {"segment": "vip"})
    {}
    """
    if (event.get("metadata") or {}).get("arm", PERSONALIZED_ARM) != PERSONALIZED_ARM:
        return {}
    found = outcome_of(event)
    if found is None or not found[0]:
        return {}
    variant, _, reward = found
    variant = variant.replace("|", "/")
    segment = str((view or {}).get("segment") or ALL_SEGMENTS).replace("|", "/")
    out: dict[str, float] = {}
    for group in {segment, ALL_SEGMENTS}:
        out[f"{group}|{variant}|n"] = 1.0
        out[f"{group}|{variant}|sum"] = reward
    return {NS_SEGMENT_VARIANT: out}
