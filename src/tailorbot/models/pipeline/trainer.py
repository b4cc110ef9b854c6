"""One training run of the intent model, from rows to a model and its card.

1. Split the rows 70/15/15 (:mod:`.splits`; by time when they come from a log). Rows of a
   ``base`` corpus (e.g. the bundled Banking77 data the first model was trained on) join the
   training side only: validation, the CV folds and the test are the logged rows alone.
2. Select hyperparameters on train + validation: an Optuna search over k folds
   (:mod:`.search`), or the defaults scored by the same k-fold CV (``search=False``; the
   fallback's threshold and margin are then calibrated on the validation split).
3. Fit on train, fit the temperature on validation, refit on train + validation keeping it.
4. Score the refitted model once on the test split: the card's ``test`` figures.

>>> rows = [{"text": t, "intent": i} for t, i in [
...     ("where is my card", "card"), ("card not here", "card"), ("no card yet", "card"),
...     ("card still missing", "card"), ("my card?", "card"), ("card late", "card"),
...     ("top up please", "top_up"), ("add money", "top_up"), ("top up failed", "top_up"),
...     ("how to add funds", "top_up"), ("topping up", "top_up"), ("load money", "top_up")]] * 3
>>> run = train_intent(rows, search=False, k=2)
>>> sorted(run.card)[:4], run.card["data"]["splits"]
(['cv', 'data', 'labels', 'metrics'], {'train': 24, 'validation': 6, 'test': 6})
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tailorbot.models.pipeline.crossval import (
    DEFAULT_WRONG_ANSWER_COST,
    IntentParams,
    cross_validate,
    fold_metrics,
)
from tailorbot.models.pipeline.splits import split_rows


@dataclass(frozen=True)
class TrainingRun:
    model: Any
    card: dict[str, Any]
    test_rows: list[Mapping[str, Any]]
    trained_keys: frozenset[str]  # :func:`text_key` of every row the model saw


def text_key(text: str) -> str:
    """A short digest of a text: how the gate tells rows a model saw from rows it did not."""
    return hashlib.sha1(text.encode(), usedforsecurity=False).hexdigest()[:16]


def train_intent(
    rows: Sequence[Mapping[str, Any]],
    *,
    search: bool = True,
    k: int = 5,
    n_trials: int | None = None,
    timeout_s: float | None = None,
    seed: int = 0,
    by_time: bool | None = None,
    source: str = "rows",
    wrong_answer_cost: float = DEFAULT_WRONG_ANSWER_COST,
    params: IntentParams | None = None,
    base: Sequence[Mapping[str, Any]] = (),
) -> TrainingRun:
    """Run the steps of the module doc; ``by_time`` defaults to "rows carry ``epoch``";
    without search, ``params`` replaces the defaults."""
    from tailorbot.models.intent import calibrate_fallback
    from tailorbot.models.pipeline.search import (
        DEFAULT_TIMEOUT_S,
        DEFAULT_TRIALS,
        search_intent_params,
    )

    started = time.perf_counter()
    if by_time is None:
        by_time = bool(rows) and all("epoch" in r for r in rows)
    split = split_rows(rows, by_time=by_time, seed=seed)
    if not split.validation or not split.test:
        raise ValueError(
            f"no row left for validation or test in {len(rows)} rows: "
            "give each intent at least 4 examples"
        )
    texts, labels = _xy(split.selection)
    base_xy = _xy(base)
    search_report: dict[str, Any] | None = None
    if search:
        result = search_intent_params(
            texts,
            labels,
            k=k,
            n_trials=n_trials or DEFAULT_TRIALS,
            timeout_s=timeout_s or DEFAULT_TIMEOUT_S,
            seed=seed,
            wrong_answer_cost=wrong_answer_cost,
            base=base_xy,
        )
        params, cv = result.best, result.best_scores
        search_report = result.to_dict()
    else:
        params = params or IntentParams()
        cv = cross_validate(
            params, texts, labels, k=k, seed=seed, wrong_answer_cost=wrong_answer_cost,
            base=base_xy,
        )  # fmt: skip
    train_x, train_y = _xy(split.train)
    val_x, val_y = _xy(split.validation)
    first = (
        params.make_model().fit(train_x + base_xy[0], train_y + base_xy[1]).calibrate(val_x, val_y)
    )
    fallback = first.fallback
    if not search:  # the model's own procedure: the fallback calibrated on validation
        fallback = calibrate_fallback(
            first.predict_proba(val_x), val_y, first.labels, wrong_answer_cost=wrong_answer_cost
        ).policy
        params = IntentParams(
            **{**params.__dict__, "threshold": fallback.threshold, "margin": fallback.margin}
        )
    model = params.make_model().fit(
        texts + base_xy[0], labels + base_xy[1], temperature=first.temperature
    )
    model.fallback = fallback
    test_x, test_y = _xy(split.test)
    test = fold_metrics(model, test_x, test_y, wrong_answer_cost)
    card = {
        "model": type(model).__name__,
        "params": params.to_dict(),
        "labels": list(model.labels),
        "temperature": model.temperature,
        "thresholds": {"threshold": fallback.threshold, "margin": fallback.margin},
        "cv": {"k": k, "selection_metric": "answer_score", **cv.summary()},
        "search": search_report,
        "test": {**test, "n": len(test_y)},
        "metrics": {**test, "split": "test", "n": len(test_y)},
        "training_data_hash": "sha256:" + _rows_hash(rows),
        "data": {
            "source": source,
            "rows": len(rows),
            "base_rows": len(base),
            "splits": split.sizes(),
            "by_time": by_time,
            "window": _window(rows),
        },
        "training": {
            "seconds": round(time.perf_counter() - started, 1),
            "seed": seed,
            "wrong_answer_cost": wrong_answer_cost,
        },
    }
    seen = frozenset(text_key(t) for t in texts + base_xy[0])
    return TrainingRun(model, card, list(split.test), seen)


def _xy(rows: Sequence[Mapping[str, Any]]) -> tuple[list[str], list[str]]:
    return [str(r["text"]) for r in rows], [str(r["intent"]) for r in rows]


def _window(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any] | None:
    stamps = [r["timestamp"] for r in rows if r.get("timestamp")]
    return {"first": min(stamps), "last": max(stamps)} if stamps else None


def _rows_hash(rows: Sequence[Mapping[str, Any]]) -> str:
    digest = hashlib.sha256()
    for row in rows:
        digest.update(f"{row['text']}\t{row['intent']}\n".encode())
    return digest.hexdigest()
