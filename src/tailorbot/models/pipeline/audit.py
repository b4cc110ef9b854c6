"""Fairness audit: how well each segment of customers is served, and a gate for promotion.

Segments: tier, language, region, channel, new vs returning, and any profile attribute the
operator lists. Per segment:

* **intent accuracy** on labelled messages (the served model's logged intent, or a candidate
  model's prediction), with a 95 % Wilson interval, its gap to the best-served segment (with a
  Wald interval) and its ratio to it;
* **fallback and hand-off rates**, **CSAT** and **resolution** by experiment arm, and the
  **recommendation hit rate** (an offered article found helpful or resolving), per decision.

A segment with fewer than ``min_rows`` *labelled* rows is *flagged* ``small``: its figures
are shown but neither the best-served segment nor the gate judges it (the flag counts the
labels the judgement counts, not the decisions).

The gate (:class:`AuditGate`) fails when a judged segment's accuracy is *confidently* more
than ``max_gap`` below the overall accuracy: the upper end of its interval is below
``overall - max_gap``. Noise in a small segment does not fail it; a segment the model
plainly cannot serve does. With no labelled row at all there is nothing to audit, and the
gate fails: a pass must rest on data.

>>> rows = ([{"intent": "a", "predicted": "a", "language": "en"}] * 60
...         + [{"intent": "a", "predicted": "b", "language": "de"}] * 40)
>>> report = audit(rows, [], dimensions=("language",), min_rows=30)
>>> [(s["segment"], s["intent_accuracy"]["value"]) for s in report["dimensions"]["language"]]
[('de', 0.0), ('en', 1.0)]
>>> AuditGate(max_gap=0.1, min_rows=30).check(report)[0]
False
>>> AuditGate().check(audit([], [], dimensions=("language",)))
(False, ['no labelled rows: nothing to audit'])
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tailorbot.models.pipeline.stats import clustered_mean, rate_gap, wilson

BASE_DIMENSIONS = ("tier", "language", "region", "channel", "returning")
NOTHING_TO_AUDIT = "no labelled rows: nothing to audit"
Row = Mapping[str, Any]


def segment_of(row: Row, dimension: str) -> str:
    """The row's segment along ``dimension`` (a profile attribute when not a base one)."""
    if dimension == "returning":
        value = row.get("returning")
        return "unknown" if value is None else ("returning" if value else "new")
    if dimension in BASE_DIMENSIONS:
        value = row.get(dimension)
    else:
        value = (row.get("attributes") or {}).get(dimension)
    return "unknown" if value is None or value == "" else str(value)


def _proportion(hits: int, n: int) -> dict[str, Any] | None:
    if n == 0:
        return None
    low, high = wilson(hits, n)
    return {"value": hits / n, "low": low, "high": high, "n": n}


def _by_user(rows: Sequence[Row], field: str, proportion: bool) -> dict[str, Any] | None:
    """The rows' mean of ``field`` with an interval clustered by user (the rows of one user
    are correlated), and how many rows and users it rests on."""
    pairs = [(str(r["user_id"]), float(r[field])) for r in rows if r.get(field) is not None]
    found = clustered_mean(pairs, proportion=proportion)
    if found is None:
        return None
    value, low, high, users = found
    return {"value": value, "low": low, "high": high, "n": len(pairs), "users": users}


def _by_arm(rows: Sequence[Row], make: Callable[[Sequence[Row]], Any]) -> dict[str, Any]:
    arms = sorted({str(r.get("arm") or "unknown") for r in rows})
    return {arm: make([r for r in rows if str(r.get("arm") or "unknown") == arm]) for arm in arms}


def _decision_figures(rows: Sequence[Row]) -> dict[str, Any]:
    def flag(name: str) -> dict[str, Any] | None:
        known = [r for r in rows if r.get(name) is not None]
        return _proportion(sum(bool(r[name]) for r in known), len(known))

    return {
        "n_decisions": len(rows),
        "fallback_rate": flag("fallback"),
        "handoff_rate": flag("handoff"),
        "recommendation_hit_rate": flag("hit"),
        # by arm: the A/B comparison, where users are the unit of randomization and variance
        "csat_by_arm": _by_arm(rows, lambda rs: _by_user(rs, "rating", proportion=False)),
        "resolution_by_arm": _by_arm(rows, lambda rs: _by_user(rs, "resolved", proportion=True)),
    }


def _accuracy(rows: Sequence[Row]) -> dict[str, Any] | None:
    return _proportion(sum(r["predicted"] == r["intent"] for r in rows), len(rows))


def audit(
    label_rows: Iterable[Row],
    decision_rows: Iterable[Row],
    *,
    dimensions: Sequence[str] = BASE_DIMENSIONS,
    min_rows: int = 30,
) -> dict[str, Any]:
    """The audit report (JSON-ready). ``label_rows`` need ``intent`` (the label) and
    ``predicted``; ``decision_rows`` carry ``fallback``, ``handoff``, ``arm``, ``rating``,
    ``resolved`` and ``hit`` (any may be None). Both carry the segment fields."""
    labelled, decisions = list(label_rows), list(decision_rows)
    report: dict[str, Any] = {
        "min_rows": min_rows,
        "overall": {"intent_accuracy": _accuracy(labelled), **_decision_figures(decisions)},
        "dimensions": {},
    }
    for dimension in dimensions:
        names = sorted({segment_of(r, dimension) for r in [*labelled, *decisions]})
        segments = []
        for name in names:
            mine = [r for r in labelled if segment_of(r, dimension) == name]
            theirs = [r for r in decisions if segment_of(r, dimension) == name]
            segments.append(
                {
                    "segment": name,
                    "n_labelled": len(mine),
                    "small": len(mine) < min_rows,  # as judged: by labelled rows
                    "intent_accuracy": _accuracy(mine),
                    **_decision_figures(theirs),
                }
            )
        _compare_to_best(segments, min_rows)
        report["dimensions"][dimension] = segments
    return report


def _compare_to_best(segments: list[dict[str, Any]], min_rows: int) -> None:
    """Gap and ratio of each segment's accuracy to the best-served judged segment."""
    judged = [
        s for s in segments if s["intent_accuracy"] is not None and s["n_labelled"] >= min_rows
    ]
    if not judged:
        return
    best = max(judged, key=lambda s: s["intent_accuracy"]["value"])
    top, n_top = best["intent_accuracy"]["value"], best["intent_accuracy"]["n"]
    for s in segments:
        acc = s["intent_accuracy"]
        if acc is None:
            continue
        gap, low, high = rate_gap(top, n_top, acc["value"], acc["n"])
        acc.update(
            best_segment=best["segment"],
            gap=gap,
            gap_low=low,
            gap_high=high,
            ratio=acc["value"] / top if top > 0 else None,
        )


@dataclass(frozen=True)
class AuditGate:
    """Fail a report when a judged segment is confidently ``max_gap`` below overall."""

    max_gap: float = 0.10
    min_rows: int = 30

    def check(self, report: Mapping[str, Any]) -> tuple[bool, list[str]]:
        overall = report["overall"]["intent_accuracy"]
        if overall is None:
            return False, [NOTHING_TO_AUDIT]
        floor = overall["value"] - self.max_gap
        reasons = []
        for dimension, segments in report["dimensions"].items():
            for s in segments:
                acc = s["intent_accuracy"]
                if acc is None or s["n_labelled"] < self.min_rows:
                    continue
                if acc["high"] < floor:
                    reasons.append(
                        f"{dimension}={s['segment']}: intent accuracy {acc['value']:.3f} "
                        f"(95% CI up to {acc['high']:.3f}) is more than {self.max_gap:.2f} "
                        f"below overall {overall['value']:.3f} (n={acc['n']})"
                    )
        return not reasons, reasons
