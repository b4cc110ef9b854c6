"""Candidates, promotion and rollback: the registry side of the pipeline.

A trained model is saved as a **candidate** version with its card (:mod:`.trainer`), its
held-out test rows (``heldout.jsonl``) and digests of the texts it trained on
(``trained.txt``). It becomes **current** (what every server loads,
:func:`tailorbot.models.registry.current_version`) only through :func:`promote`, which
passes when

1. the candidate is not worse than the current version on the *same* held-out rows: the
   candidate's test split plus the current version's test rows the candidate never trained
   on (so a candidate trained on less data, say without one language, still meets the rows it
   left out); its answer score must be at least the current one's minus ``tolerance``; and
2. the audit of the candidate's predictions on those rows passes the :class:`AuditGate`.

Caveat: the current version may have trained on some of the candidate's test rows (an older
window of the same log), which favours it; the gate errs on the side of keeping what runs.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tailorbot.models import registry
from tailorbot.models.pipeline.audit import BASE_DIMENSIONS, AuditGate, audit
from tailorbot.models.pipeline.crossval import DEFAULT_WRONG_ANSWER_COST, fold_metrics
from tailorbot.models.pipeline.trainer import TrainingRun, text_key

KIND = "intent"
TRAINED_FILE = "trained.txt"


class PromotionRefused(Exception):
    """A promotion or rollback that must not happen; the message says why, in one line."""


@dataclass(frozen=True)
class GateResult:
    passed: bool
    reasons: list[str]
    candidate: dict[str, float]
    current: dict[str, float] | None
    audit: dict[str, Any] = field(repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "reasons": self.reasons,
            "candidate": self.candidate,
            "current": self.current,
        }


def save_candidate(data_dir: str | Path, run: TrainingRun, kind: str = KIND) -> registry.SavedModel:
    """Save the run's model as a new version with its card, its parent and its held-out rows."""
    parent = registry.pin_current(data_dir, kind)  # the candidate must not go live unpromoted
    card = {**run.card, "parent": parent}
    saved = registry.save(data_dir, run.model, card, kind=kind)
    path = saved.path / registry.HELDOUT_FILE
    staging = path.with_name(".heldout.tmp")
    with staging.open("w", encoding="utf-8") as handle:
        for row in run.test_rows:
            handle.write(json.dumps(row, sort_keys=True) + "\n")
    staging.replace(path)
    keys = saved.path / TRAINED_FILE
    keys.with_name(".trained.tmp").write_text("\n".join(sorted(run.trained_keys)) + "\n")
    keys.with_name(".trained.tmp").replace(keys)
    return saved


def gate_rows(data_dir: str | Path, version: str, against: str | None, kind: str = KIND) -> list:
    """The candidate's test rows plus the ``against`` version's test rows it never saw."""
    rows = heldout_rows(data_dir, version, kind)
    if against is None:
        return rows
    root = registry.kind_dir(data_dir, kind)
    try:
        theirs = heldout_rows(data_dir, against, kind)
        seen = set((root / version / TRAINED_FILE).read_text().split())
    except (PromotionRefused, FileNotFoundError):
        return rows  # the current version was not trained by the pipeline
    seen |= {text_key(str(r["text"])) for r in rows}
    return rows + [r for r in theirs if text_key(str(r["text"])) not in seen]


def heldout_rows(data_dir: str | Path, version: str, kind: str = KIND) -> list[dict[str, Any]]:
    path = registry.kind_dir(data_dir, kind) / version / registry.HELDOUT_FILE
    if not path.is_file():
        raise PromotionRefused(
            f"version {version} has no held-out rows (not trained by the pipeline)"
        )
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def predicted_rows(model: Any, rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """``rows`` with the model's top intent under ``predicted`` (for the audit)."""
    if not rows:
        return []
    probs = model.predict_proba([str(r["text"]) for r in rows])
    labels = list(model.labels)
    return [{**r, "predicted": labels[int(p.argmax())]} for r, p in zip(rows, probs, strict=True)]


def run_gate(
    candidate: Any,
    current: Any | None,
    rows: Sequence[Mapping[str, Any]],
    gate: AuditGate,
    *,
    tolerance: float = 0.01,
    attributes: Sequence[str] = (),
    wrong_answer_cost: float = DEFAULT_WRONG_ANSWER_COST,
) -> GateResult:
    """Compare ``candidate`` with ``current`` (a fitted model or None) on ``rows`` and audit it."""
    if not rows:
        raise PromotionRefused("no held-out rows to compare on")
    texts, gold = [str(r["text"]) for r in rows], [str(r["intent"]) for r in rows]
    mine = fold_metrics(candidate, texts, gold, wrong_answer_cost)
    theirs = fold_metrics(current, texts, gold, wrong_answer_cost) if current is not None else None
    reasons = []
    if theirs is not None and mine["answer_score"] < theirs["answer_score"] - tolerance:
        reasons.append(
            f"answer score {mine['answer_score']:.4f} is below the current version's "
            f"{theirs['answer_score']:.4f} by more than the tolerance {tolerance:g} "
            f"on the same {len(rows)} held-out rows"
        )
    report = audit(
        predicted_rows(candidate, rows),
        [],
        dimensions=(*BASE_DIMENSIONS, *attributes),
        min_rows=gate.min_rows,
    )
    audit_ok, audit_reasons = gate.check(report)
    if not audit_ok:
        reasons.extend(f"audit: {r}" for r in audit_reasons)
    return GateResult(not reasons, reasons, mine, theirs, report)


def promote(
    data_dir: str | Path,
    version: str,
    gate: AuditGate,
    *,
    tolerance: float = 0.01,
    attributes: Sequence[str] = (),
    kind: str = KIND,
) -> GateResult:
    """Run the gate for ``version`` and make it current when it passes.

    Raises :class:`PromotionRefused` (with the first reason) when it does not, or when it is
    current already; the gate's result is written to the version's card either way.
    """
    registry.pin_current(data_dir, kind)
    current_name = registry.current_version(data_dir, kind)
    if current_name == version:
        raise PromotionRefused(f"{version} is the current version already")
    candidate = registry.load(data_dir, version, kind)
    current = None
    if current_name is not None and current_name != version:
        current = registry.load(data_dir, current_name, kind).model
    result = run_gate(
        candidate.model,
        current,
        gate_rows(data_dir, version, current_name, kind),
        gate,
        tolerance=tolerance,
        attributes=attributes,
    )
    registry.update_metadata(
        data_dir,
        version,
        {"gate": {**result.to_dict(), "against": current_name}, "audit": _audit_summary(result)},
        kind,
    )
    if not result.passed:
        raise PromotionRefused(f"{version} refused: {result.reasons[0]}")
    registry.set_current(
        data_dir, version, kind, action="promote", reason=f"gate passed against {current_name}"
    )
    return result


def rollback(data_dir: str | Path, kind: str = KIND) -> str:
    """Make the version before the current one current again; returns it."""
    moves = registry.history(data_dir, kind)
    current = registry.current_version(data_dir, kind)
    previous = moves[-1]["previous"] if moves else None
    if not moves or moves[-1]["version"] != current or previous is None:
        raise PromotionRefused(f"nothing to roll back to: {current} has no recorded predecessor")
    registry.set_current(
        data_dir, previous, kind, action="rollback", reason=f"rolled back {current}"
    )
    return str(previous)


def _audit_summary(result: GateResult) -> dict[str, Any]:
    """The card keeps the gate's verdict and each judged segment's accuracy."""
    segments = {
        f"{dim}={s['segment']}": round(s["intent_accuracy"]["value"], 4)
        for dim, items in result.audit["dimensions"].items()
        for s in items
        if s["intent_accuracy"] is not None and not s["small"]
    }
    overall = result.audit["overall"]["intent_accuracy"]
    return {
        "passed": not any(r.startswith("audit:") for r in result.reasons),
        "overall_accuracy": None if overall is None else overall["value"],
        "segments": segments,
    }
