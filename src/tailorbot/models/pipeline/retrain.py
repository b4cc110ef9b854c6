"""Retraining without a person: when enough new labels arrived (or on a schedule), build the
training set from the log, train with a small search, run the promotion gate, and record why
the candidate was promoted or kept.

The last outcome is written to ``DATA_DIR/models/intent/RETRAIN.json`` (servers read it for
their metrics); the label count there is what "new labels" are counted against. A failed
run keeps the count of the last run that trained, so its labels stay new and the next check
retries.

>>> policy = RetrainPolicy(min_labels=100, interval_s=0)
>>> policy.due(new_labels=120, since_last_s=5.0), policy.due(new_labels=10, since_last_s=1e9)
((True, '120 new labels (threshold 100)'), (False, '10 new labels of 100 needed'))
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tailorbot.models import registry
from tailorbot.models.pipeline.audit import AuditGate

STATE_FILE = "RETRAIN.json"


@dataclass(frozen=True)
class RetrainPolicy:
    min_labels: int = 200
    interval_s: float = 0.0  # 0: no schedule, labels only

    def due(self, new_labels: int, since_last_s: float | None) -> tuple[bool, str]:
        if new_labels >= self.min_labels:
            return True, f"{new_labels} new labels (threshold {self.min_labels})"
        if self.interval_s > 0 and (since_last_s is None or since_last_s >= self.interval_s):
            if new_labels == 0:
                return False, "schedule due, but no new label since the last run"
            return True, f"schedule: {self.interval_s:g} s since the last run"
        return False, f"{new_labels} new labels of {self.min_labels} needed"


@dataclass(frozen=True)
class RetrainOutcome:
    outcome: str  # "skipped", "promoted", "kept", "failed"
    why: str
    labels_total: int
    version: str | None = None
    at: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def last_outcome(data_dir: str | Path, kind: str = "intent") -> dict[str, Any] | None:
    path = registry.kind_dir(data_dir, kind) / STATE_FILE
    try:
        return dict(json.loads(path.read_text()))
    except (FileNotFoundError, ValueError):
        return None


def _record(data_dir: str | Path, outcome: RetrainOutcome, kind: str) -> None:
    root = registry.kind_dir(data_dir, kind)
    root.mkdir(parents=True, exist_ok=True)
    staging = root / f".{STATE_FILE}.tmp"
    staging.write_text(json.dumps(outcome.to_dict(), sort_keys=True))
    staging.replace(root / STATE_FILE)


def retrain_once(
    data_dir: str | Path,
    events: Sequence[Mapping[str, Any]],
    profiles: Mapping[str, Mapping[str, Any]],
    *,
    policy: RetrainPolicy,
    gate: AuditGate,
    tolerance: float = 0.01,
    train_options: Mapping[str, Any] | None = None,
    force: bool = False,
    kind: str = "intent",
    clock: Callable[[], float] = time.time,
    attributes: Sequence[str] = (),
) -> RetrainOutcome:
    """One check: retrain if due (or ``force``), gate, promote or keep; the outcome is
    recorded unless it is a skip. ``train_options`` go to
    :func:`~tailorbot.models.pipeline.routed.train_routed` (the logged rows are the default
    language's: a log's texts are whatever its customers wrote)."""
    from tailorbot.models.pipeline import promotion
    from tailorbot.models.pipeline.dataset import build_dataset
    from tailorbot.models.pipeline.routed import train_routed

    labels_total = len({e["event_id"] for e in events if e.get("type") == "intent_label"})
    last = last_outcome(data_dir, kind)
    since_last = None
    if last is not None:
        since_last = clock() - datetime.fromisoformat(last["at"]).timestamp()
    counted = int(last["labels_total"]) if last is not None else 0
    new = labels_total - counted
    due, why = policy.due(new, since_last)
    now = datetime.fromtimestamp(clock(), UTC).isoformat()
    if not (due or force):
        return RetrainOutcome("skipped", why, labels_total, at=now)
    try:
        rows = build_dataset(events, profiles)
        options = dict(train_options or {})
        run = train_routed({options.get("default_language", "en"): rows}, source="log", **options)
    except (ValueError, RuntimeError) as exc:
        # The labels were not used: keep the last count, so that they still count as new.
        outcome = RetrainOutcome("failed", f"{why}; training failed: {exc}", counted, at=now)
        _record(data_dir, outcome, kind)
        return outcome
    saved = promotion.save_candidate(data_dir, run, kind)
    try:
        promotion.promote(
            data_dir, saved.version, gate, tolerance=tolerance, kind=kind, attributes=attributes
        )
        outcome = RetrainOutcome(
            "promoted", f"{why}; gate passed", labels_total, saved.version, now
        )
    except promotion.PromotionRefused as exc:
        outcome = RetrainOutcome("kept", f"{why}; {exc}", labels_total, saved.version, now)
    _record(data_dir, outcome, kind)
    return outcome
