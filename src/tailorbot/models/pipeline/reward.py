"""The reward model through the pipeline: a ridge regression per response variant predicting
the reward of a logged decision from its context (the doubly robust estimator's model,
:class:`~tailorbot.models.evaluation.ope.reward_model.VariantRewardModel`).

1. **Time split** of the decisions with a reward (their feedback), 70/15/15 by decision time.
2. **Selection on validation** over the ridge penalty (the default first, so a tie keeps it):
   root mean squared error of the predicted reward of the logged variant.
3. **Refit** on train + validation; **one test** on the newest decisions, beside the
   constant prediction (the mean reward of the fitting rows) as a reference.

The held-out rows carry context, variant and reward, so the promotion gate scores the
current version on the same rows (:class:`RewardJudge`: lower error is better). The decisions
of a user whose profile withholds analytics consent are left out first, as from the intent
dataset.

>>> records = [{"decision_id": f"d{i}", "user_id": f"u{i % 5}", "variant": "ab"[i % 2],
...             "context": {"vip": float(i % 3 == 0)}, "feedback": {"reward": float(i % 2)},
...             "created_at": f"2026-01-01T10:{i:02d}:00+00:00"} for i in range(40)]
>>> run = train_reward(records)
>>> run.card["data"]["splits"], run.card["test"]["rmse"] < run.card["test"]["baseline_rmse"]
({'train': 28, 'validation': 6, 'test': 6}, True)
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np

from tailorbot.models.pipeline.dataset import consenting
from tailorbot.models.pipeline.judge import Judge
from tailorbot.models.pipeline.trainer import Row, TrainingRun

DEFAULT_RIDGE = 1.0
RIDGES = (DEFAULT_RIDGE, 0.01, 0.1, 10.0, 100.0)
SHARES = (0.70, 0.85)


def reward_rows(records: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Decisions with a variant and a reward, oldest first."""
    rows = []
    for record in records:
        reward = (record.get("feedback") or {}).get("reward")
        if reward is None or record.get("variant") is None or not record.get("created_at"):
            continue
        created = str(record["created_at"])
        rows.append(
            {
                "decision_id": record.get("decision_id"),
                "user_id": record.get("user_id"),
                "created_at": created,
                "epoch": datetime.fromisoformat(created).timestamp(),
                "variant": str(record["variant"]),
                "context": {k: float(v) for k, v in (record.get("context") or {}).items()},
                "arm": record.get("arm"),
                "reward": float(reward),
            }
        )
    rows.sort(key=lambda r: (r["epoch"], str(r["decision_id"])))
    return rows


def errors(predicted: np.ndarray, rows: Sequence[Row]) -> dict[str, Any]:
    truth = np.array([r["reward"] for r in rows], dtype=float)
    diff = np.asarray(predicted, dtype=float) - truth
    return {
        "rmse": float(math.sqrt(np.mean(diff**2))),
        "mae": float(np.mean(np.abs(diff))),
        "n": len(rows),
    }


@dataclass(frozen=True)
class RewardJudge(Judge):
    kind: str = "reward"
    metric: str = "rmse"
    higher_is_better: bool = False
    audited: bool = False

    def score(self, model: Any, rows: Sequence[Row]) -> dict[str, Any]:
        return errors(
            model.predict([r["context"] for r in rows], [r["variant"] for r in rows]), rows
        )


def train_reward(
    records: Iterable[Mapping[str, Any]],
    *,
    profiles: Mapping[str, Mapping[str, Any]] | None = None,
    search: bool = True,
    ridge: float | None = None,
    source: str = "decisions",
) -> TrainingRun:
    """Steps 1-3 of the module doc on decision records (with their ``feedback``), less those
    of the users whose profile in ``profiles`` withholds analytics consent. Without
    ``search``, ``ridge`` (else the default) is the only candidate."""
    if ridge is not None and not 0 < ridge < float("inf"):
        raise ValueError(f"ridge must be a finite number above 0 (0 leaves the regression "
                         f"singular), got {ridge!r}")  # fmt: skip
    started = time.perf_counter()
    rows = reward_rows(consenting(records, profiles))
    n_train, n_val = (int(round(len(rows) * s)) for s in SHARES)
    train, validation, test = rows[:n_train], rows[n_train:n_val], rows[n_val:]
    if len(train) < 2 or not validation or not test:
        raise ValueError(
            f"{len(rows)} decisions with a reward: too few for a 70/15/15 split by time "
            "(need at least 2 to fit, 1 to validate and 1 to test)"
        )
    judge = RewardJudge()
    candidates = RIDGES if search else (DEFAULT_RIDGE if ridge is None else ridge,)
    scored = [(judge.score(_fit(train, r), validation), r) for r in candidates]
    best_scores, chosen = min(scored, key=lambda item: item[0]["rmse"])  # first on a tie
    fitting = [*train, *validation]
    model = _fit(fitting, chosen)
    tested = judge.score(model, test)
    mean = float(np.mean([r["reward"] for r in fitting]))
    tested["baseline_rmse"] = errors(np.full(len(test), mean), test)["rmse"]
    default = next((s for s, r in scored if r == DEFAULT_RIDGE), None)
    card = {
        "model": type(model).__name__,
        "params": {"ridge": chosen},
        "actions": list(model.actions),
        "validation": {"metric": "rmse", "candidates": len(candidates), "best": best_scores,
                       "defaults": default, "gain_over_defaults":
                       None if default is None else default["rmse"] - best_scores["rmse"]},
        "test": tested,
        "metrics": {**tested, "split": "test"},
        "data": {"source": source, "rows": len(rows), "by_time": True,
                 "splits": {"train": len(train), "validation": len(validation),
                            "test": len(test)},
                 "window": {"first": rows[0]["created_at"], "last": rows[-1]["created_at"]}},
        "training": {"seconds": round(time.perf_counter() - started, 2)},
    }  # fmt: skip
    return TrainingRun(model, card, test, frozenset())


def _fit(rows: Sequence[Row], ridge: float) -> Any:
    from tailorbot.models.evaluation.ope.reward_model import VariantRewardModel

    return VariantRewardModel(ridge).fit(
        [r["context"] for r in rows], [r["variant"] for r in rows], [r["reward"] for r in rows]
    )
