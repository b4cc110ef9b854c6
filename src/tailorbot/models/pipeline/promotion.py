"""Candidates, promotion and rollback: the registry side of the pipeline, for every kind.

A trained model is saved as a **candidate** version with its card (the trainers of
:mod:`.trainer`, :mod:`.cf`, :mod:`.reward`), its held-out test rows (``heldout.jsonl``)
and, for intent models, digests of the texts it trained on (``trained.txt``). It becomes
**current** (what every server loads, :func:`tailorbot.models.registry.current_version`)
only through :func:`promote`, which passes when

1. the candidate is not worse than the current version on the *same* held-out rows: the
   candidate's test rows, each scored by both models, plus (intent models) the current
   version's test rows the candidate never trained on, so that a candidate trained on less
   data, say without one language, still meets the rows it left out. Its figure (the kind's
   :class:`~tailorbot.models.pipeline.judge.Judge` metric) may be worse than the current
   one's by at most ``tolerance``. A current version saved without held-out rows (by an older
   path) is scored on the candidate's rows alone;
2. the candidate is not worse than the **bar** by more than ``tolerance`` either, on the same
   rows: the best version of the promotions that led to the current one (the ``bar`` of the
   history's promote entry that made it current; a promoted candidate that does not score
   below the bar becomes it). Compared with the current version alone, a run of candidates
   each a little worse than the one before would pass one by one and lose any amount in
   all; with the bar, the promotions since the bar lose at most ``tolerance`` together. A
   bar whose files are gone or cannot be loaded is skipped (the card's ``gate.compared_on``
   says so); and
3. for intent models, the audit of the candidate's predictions on those rows passes the
   :class:`AuditGate`.

When no comparison is possible (the candidate has no held-out rows, the current version
cannot be loaded or cannot score the rows) the promotion is refused and the refusal says why.

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
from tailorbot.models.pipeline.judge import Judge, judge_for
from tailorbot.models.pipeline.trainer import TrainingRun, text_key

KIND = "intent"
TRAINED_FILE = "trained.txt"


class PromotionRefused(Exception):
    """A promotion or rollback that must not happen; the message says why, in one line."""


@dataclass(frozen=True)
class GateResult:
    passed: bool
    reasons: list[str]
    candidate: dict[str, Any]
    current: dict[str, Any] | None
    audit: dict[str, Any] | None = field(repr=False, default=None)
    metric: str = "answer_score"
    compared_on: str = ""
    bar: dict[str, Any] | None = None  # the bar version's figures, when it is not the current

    def to_dict(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "reasons": self.reasons,
            "metric": self.metric,
            "compared_on": self.compared_on,
            "candidate": self.candidate,
            "current": self.current,
            "bar_scores": self.bar,
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
    if run.trained_keys:
        keys = saved.path / TRAINED_FILE
        keys.with_name(".trained.tmp").write_text("\n".join(sorted(run.trained_keys)) + "\n")
        keys.with_name(".trained.tmp").replace(keys)
    return saved


def gate_rows(
    data_dir: str | Path, version: str, against: str | None, kind: str = KIND
) -> tuple[list[dict[str, Any]], str]:
    """The rows to compare on and how they were chosen: the candidate's test rows plus, when
    both versions allow it, the ``against`` version's test rows the candidate never saw."""
    rows = heldout_rows(data_dir, version, kind)
    mine = f"the candidate's {len(rows)} test rows"
    if against is None:
        return rows, mine
    root = registry.kind_dir(data_dir, kind)
    if not (root / against / registry.HELDOUT_FILE).is_file():
        return rows, f"{mine} (the current version {against} has no held-out rows of its own)"
    seen_file = root / version / TRAINED_FILE
    if not seen_file.is_file():
        return rows, mine  # a time-split kind: the current's test rows may be its training rows
    seen = set(seen_file.read_text().split()) | {text_key(str(r["text"])) for r in rows}
    theirs = [
        r for r in heldout_rows(data_dir, against, kind) if text_key(str(r["text"])) not in seen
    ]
    return rows + theirs, f"{mine} + {len(theirs)} of the current version's it never saw"


def heldout_rows(data_dir: str | Path, version: str, kind: str = KIND) -> list[dict[str, Any]]:
    path = registry.kind_dir(data_dir, kind) / version / registry.HELDOUT_FILE
    if not path.is_file():
        raise PromotionRefused(
            f"cannot compare {version} with the current version: it has no held-out test rows "
            "(saved by an older path, before the pipeline); train it again with the pipeline "
            f"(`tailorbot {_command(kind)}`) to get a model card and held-out rows"
        )
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _command(kind: str) -> str:
    return {"intent": "train", "item_knn": "train-recs", "reward": "train-reward"}.get(kind, kind)


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
    judge: Judge | None = None,
    compared_on: str = "",
    bar: tuple[str, Any] | None = None,
) -> GateResult:
    """Compare ``candidate`` with ``current`` (a fitted model or None) and with ``bar``
    (``(version, fitted model)``, when the bar is not the current version) on ``rows`` and,
    for an audited kind, audit the candidate."""
    judge = judge or judge_for(KIND)
    if not rows:
        raise PromotionRefused("cannot compare: no held-out rows to compare on")
    mine = judge.score(candidate, rows)
    theirs = None if current is None else _score(judge, current, rows, "the current version")
    reasons = []
    direction = "below" if judge.higher_is_better else "above"
    if theirs is not None and judge.worse_by(mine[judge.metric], theirs[judge.metric]) > tolerance:
        reasons.append(
            f"{judge.metric} {mine[judge.metric]:.4f} is {direction} the current version's "
            f"{theirs[judge.metric]:.4f} by more than the tolerance {tolerance:g} "
            f"on the same {len(rows)} held-out rows"
        )
    bars = None
    if bar is not None:
        bars = _score(judge, bar[1], rows, f"the bar version {bar[0]}")
        if judge.worse_by(mine[judge.metric], bars[judge.metric]) > tolerance:
            reasons.append(
                f"{judge.metric} {mine[judge.metric]:.4f} is {direction} the bar version "
                f"{bar[0]}'s {bars[judge.metric]:.4f} by more than the tolerance {tolerance:g} "
                f"on the same {len(rows)} held-out rows (the promotions since {bar[0]} may "
                "not lose more than the tolerance together)"
            )
    report = None
    if judge.audited:
        dimensions = (*BASE_DIMENSIONS, *attributes)
        report = audit(predicted_rows(candidate, rows), [], dimensions=dimensions,
                       min_rows=gate.min_rows)  # fmt: skip
        audit_ok, audit_reasons = gate.check(report)
        reasons.extend(f"audit: {r}" for r in audit_reasons if not audit_ok)
    return GateResult(not reasons, reasons, mine, theirs, report, judge.metric, compared_on, bars)


def _score(judge: Judge, model: Any, rows: Sequence[Mapping[str, Any]], who: str) -> dict:
    try:
        return judge.score(model, rows)
    except (ValueError, KeyError, AttributeError, TypeError) as exc:
        refusal = f"cannot compare: {who} cannot score the held-out rows ({exc})"
        raise PromotionRefused(refusal) from None


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

    Raises :class:`PromotionRefused` (with the first reason) when it does not, when it is
    current already, or when no comparison is possible; the gate's result is written to the
    version's card whenever the gate ran.
    """
    judge = judge_for(kind)
    registry.pin_current(data_dir, kind)
    current_name = registry.current_version(data_dir, kind)
    if current_name == version:
        raise PromotionRefused(f"{version} is the current version already")
    candidate = registry.load(data_dir, version, kind)
    rows, compared_on = gate_rows(data_dir, version, current_name, kind)
    bar, skipped = _bar(data_dir, current_name, kind)
    if skipped is not None:
        compared_on += f" ({skipped}: compared with the current version only)"
    result = run_gate(
        candidate.model, _load_current(data_dir, current_name, kind), rows, gate,
        tolerance=tolerance, attributes=attributes, judge=judge, compared_on=compared_on,
        bar=bar,
    )  # fmt: skip
    compared = {"against": current_name, "bar": bar[0] if bar is not None else None}
    extra: dict[str, Any] = {"gate": {**result.to_dict(), **compared}}
    if result.audit is not None:
        extra["audit"] = _audit_summary(result)
    registry.update_metadata(data_dir, version, extra, kind)
    if not result.passed:
        raise PromotionRefused(f"{version} refused: {result.reasons[0]}")
    registry.set_current(
        data_dir, version, kind, action="promote", reason=f"gate passed against {current_name}",
        extra={"bar": _next_bar(version, current_name, bar, result, judge)},
    )  # fmt: skip
    return result


def _bar(
    data_dir: str | Path, current: str | None, kind: str
) -> tuple[tuple[str, Any] | None, str | None]:
    """The bar the current version was promoted with, when it is another version: ``((name,
    fitted model), None)``; ``(None, why)`` when that version cannot be compared with (gone,
    or it does not load); ``(None, None)`` when there is none (no current version, one not
    made current by a promotion, or the current version is the bar)."""
    standing = _promotion_to_undo(registry.history(data_dir, kind))
    if current is None or standing is None or standing.get("version") != current:
        return None, None
    name = standing.get("bar")
    if not isinstance(name, str) or name == current:
        return None, None
    try:
        return (name, registry.load(data_dir, name, kind).model), None
    except (registry.ModelNotFoundError, registry.ModelLoadError) as exc:
        return None, f"the bar version {name} is skipped: {exc}"


def _next_bar(
    version: str, current: str | None, bar: tuple[str, Any] | None, result: GateResult,
    judge: Judge,
) -> str:  # fmt: skip
    """The bar once ``version`` is promoted: itself, unless it scored below the bar (the bar
    version, else the current one) on the gate's rows."""
    if bar is not None and result.bar is not None:
        name, figures = bar[0], result.bar
    elif current is not None and result.current is not None:
        name, figures = current, result.current
    else:
        return version
    mine = result.candidate[judge.metric]
    return version if judge.worse_by(mine, figures[judge.metric]) <= 0 else name


def _load_current(data_dir: str | Path, name: str | None, kind: str) -> Any | None:
    if name is None:
        return None
    try:
        return registry.load(data_dir, name, kind).model
    except (registry.ModelNotFoundError, registry.ModelLoadError) as exc:
        raise PromotionRefused(
            f"cannot compare with the current version {name}: it cannot be loaded ({exc})"
        ) from None


def rollback(data_dir: str | Path, kind: str = KIND) -> str:
    """Undo the newest promotion not yet undone: its ``previous`` version is current again;
    returns it.

    Rollbacks walk back along the promotions only (a second rollback undoes the promotion
    before, it does not undo the first rollback), so no rollback can make current a version
    the gate did not pass; when every promotion is undone, or the first one had no
    predecessor, it refuses.
    """
    current = registry.current_version(data_dir, kind)
    undone = _promotion_to_undo(registry.history(data_dir, kind))
    if undone is None or undone["previous"] is None:
        raise PromotionRefused(
            f"nothing to roll back to: the current {kind} version {current} has no earlier "
            "promoted version left to return to"
        )
    if undone["version"] != current:
        raise PromotionRefused(
            f"cannot roll back: the current {kind} version {current} is not the one the "
            f"history last promoted ({undone['version']}); promote a version explicitly"
        )
    previous = str(undone["previous"])
    if previous not in registry.versions(data_dir, kind):
        raise PromotionRefused(
            f"cannot roll back to {kind} version {previous}: its files are gone from "
            f"{registry.kind_dir(data_dir, kind)}"
        )
    registry.set_current(
        data_dir, previous, kind, action="rollback", reason=f"rolled back {current}"
    )
    return previous


def _promotion_to_undo(moves: Sequence[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The newest promote entry that no later rollback undid: each rollback undoes the
    newest promotion still standing (a stack).

    >>> moves = [{"action": "promote", "version": "b", "previous": "a"},
    ...          {"action": "promote", "version": "c", "previous": "b"},
    ...          {"action": "rollback", "version": "b", "previous": "c"}]
    >>> _promotion_to_undo(moves)["version"]
    'b'
    >>> _promotion_to_undo(moves[:1] + [moves[2]]) is None
    True
    """
    standing: list[Mapping[str, Any]] = []
    for move in moves:
        if move.get("action") == "promote":
            standing.append(move)
        elif move.get("action") == "rollback" and standing:
            standing.pop()
    return standing[-1] if standing else None


def _audit_summary(result: GateResult) -> dict[str, Any]:
    """The card keeps the gate's verdict and each judged segment's accuracy."""
    report = result.audit or {"dimensions": {}, "overall": {"intent_accuracy": None}}
    segments = {
        f"{dim}={s['segment']}": round(s["intent_accuracy"]["value"], 4)
        for dim, items in report["dimensions"].items()
        for s in items
        if s["intent_accuracy"] is not None and not s["small"]
    }
    overall = report["overall"]["intent_accuracy"]
    return {
        "passed": not any(r.startswith("audit:") for r in result.reasons),
        "overall_accuracy": None if overall is None else overall["value"],
        "segments": segments,
    }
