"""One training run of the intent model, from rows to a model and its card.

1. Split the rows 70/15/15 (:mod:`.splits`; by time when they come from a log). Rows of a
   ``base`` corpus (e.g. the bundled Banking77 data the first model was trained on) join the
   training side only: validation, the CV folds and the test are the logged rows alone.
2. Select hyperparameters on train + validation: an Optuna search over k folds
   (:mod:`.search`), or the defaults scored by the same k-fold CV (``search=False``; the
   fallback's threshold and margin are then calibrated on the validation split, as they are
   whenever a ``target_oos_recall`` is set).
3. Fit on train, fit the temperature on validation (and take the drift reference there),
   refit on train + validation keeping it. Rows from a log are weighted by recency when the
   chosen parameters have a half-life (age measured back from the newest train or
   validation row).
4. Score the refitted model once on the test split: the card's ``test`` figures.

The model is the served kind (``params.model``: the hybrid TF-IDF ⊕ static embeddings model
by default, or ``tfidf``).

>>> rows = [{"text": t, "intent": i} for t, i in [
...     ("where is my card", "card"), ("card not here", "card"), ("no card yet", "card"),
...     ("card still missing", "card"), ("my card?", "card"), ("card late", "card"),
...     ("top up please", "top_up"), ("add money", "top_up"), ("top up failed", "top_up"),
...     ("how to add funds", "top_up"), ("topping up", "top_up"), ("load money", "top_up")]] * 3
>>> run = train_intent(rows, search=False, k=2, model="tfidf")
>>> sorted(run.card)[:4], run.card["data"]["splits"]
(['cv', 'data', 'labels', 'metrics'], {'train': 24, 'validation': 6, 'test': 6})
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from tailorbot.models.pipeline.crossval import (
    DEFAULT_WRONG_ANSWER_COST,
    CVScores,
    IntentParams,
    cross_validate,
    fit_with_base,
    fold_metrics,
)
from tailorbot.models.pipeline.splits import Split, split_rows

DAY_S = 86_400.0
Row = Mapping[str, Any]


@dataclass(frozen=True)
class TrainingRun:
    model: Any
    card: dict[str, Any]
    test_rows: Sequence[Row]
    trained_keys: frozenset[str]  # :func:`text_key` of every row the model saw


def text_key(text: str) -> str:
    """A short digest of a text: how the gate tells rows a model saw from rows it did not."""
    return hashlib.sha1(text.encode(), usedforsecurity=False).hexdigest()[:16]


@dataclass(frozen=True)
class _Parts:
    """The split, the base corpus and the newest row's time (ages are measured from it)."""

    split: Split
    base: tuple[list[str], list[str]]
    newest: float | None  # None: rows without time, no recency weights

    def ages(self, rows: Sequence[Row]) -> list[float] | None:
        if self.newest is None:
            return None
        return [max(0.0, self.newest - float(r["epoch"])) / DAY_S for r in rows]

    def fit(self, params: IntentParams, rows: Sequence[Row], temperature: float | None) -> Any:
        """``params``' model fitted on ``rows`` + the base corpus (weight 1)."""
        texts, labels = _xy(rows)
        weights = params.weights(self.ages(rows))
        return fit_with_base(params, texts, labels, self.base, temperature, weights)

    def xy(self, rows: Sequence[Row]) -> tuple[list[str], list[str]]:
        """Texts and labels of ``rows`` + the base corpus: what a fit on them sees."""
        texts, labels = _xy(rows)
        return texts + self.base[0], labels + self.base[1]


def train_intent(
    rows: Sequence[Row],
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
    base: Sequence[Row] = (),
    model: str = "hybrid",
    target_oos_recall: float | None = None,
) -> TrainingRun:
    """Run the steps of the module doc; ``by_time`` defaults to "rows carry ``epoch``";
    without search, ``params`` replaces the defaults of ``model``."""
    started = time.perf_counter()
    if by_time is None:
        by_time = bool(rows) and all("epoch" in r for r in rows)
    split = split_rows(rows, by_time=by_time, seed=seed)
    if not split.validation or not split.test:
        raise ValueError(
            f"no row left for validation or test in {len(rows)} rows: "
            "give each intent at least 4 examples"
        )
    # Ages count back from the newest row the model may see: the test window's own times
    # must not shift the log rows' weights against the base corpus.
    newest = max(float(r["epoch"]) for r in split.selection) if by_time else None
    parts = _Parts(split, _xy(base), newest)
    params = params or IntentParams(model=model)
    if search:
        chosen, cv, report = _search(parts, params.model, k, n_trials, timeout_s, seed,
                                     wrong_answer_cost)  # fmt: skip
    else:
        chosen, cv, report = params, _cv(parts, params, k, seed, wrong_answer_cost), None
    calibrate = not search or target_oos_recall is not None
    fitted, chosen, fitting = _fit(parts, chosen, calibrate, wrong_answer_cost, target_oos_recall)
    test_x, test_y = _xy(split.test)
    test = {**fold_metrics(fitted, test_x, test_y, wrong_answer_cost), "n": len(test_y)}
    card = {
        **_card(fitted, chosen, cv, k, report, test, fitting),
        "training_data_hash": "sha256:" + _rows_hash(rows),
        "data": {"source": source, "rows": len(rows), "base_rows": len(base),
                 "splits": split.sizes(), "by_time": by_time, "window": _window(rows)},
        "training": {"seconds": round(time.perf_counter() - started, 1), "seed": seed,
                     "wrong_answer_cost": wrong_answer_cost},
    }  # fmt: skip
    seen = frozenset(text_key(t) for t in _xy(split.selection)[0] + parts.base[0])
    return TrainingRun(fitted, card, list(split.test), seen)


def _search(
    parts: _Parts, model: str, k: int, n_trials: int | None, timeout_s: float | None, seed: int,
    cost: float,
) -> tuple[IntentParams, CVScores, dict[str, Any]]:  # fmt: skip
    from tailorbot.models.pipeline.search import (
        DEFAULT_TIMEOUT_S,
        DEFAULT_TRIALS,
        search_intent_params,
    )

    texts, labels = _xy(parts.split.selection)
    result = search_intent_params(
        texts, labels, k=k, n_trials=n_trials or DEFAULT_TRIALS,
        timeout_s=timeout_s or DEFAULT_TIMEOUT_S, seed=seed, wrong_answer_cost=cost,
        base=parts.base, model=model, ages_days=parts.ages(parts.split.selection),
    )  # fmt: skip
    return result.best, result.best_scores, result.to_dict()


def _cv(parts: _Parts, params: IntentParams, k: int, seed: int, cost: float) -> CVScores:
    texts, labels = _xy(parts.split.selection)
    return cross_validate(
        params, texts, labels, k=k, seed=seed, wrong_answer_cost=cost, base=parts.base,
        ages_days=parts.ages(parts.split.selection),
    )  # fmt: skip


def _fit(
    parts: _Parts,
    params: IntentParams,
    calibrate: bool,
    cost: float,
    target_oos_recall: float | None,
) -> tuple[Any, IntentParams, dict[str, Any]]:
    """Steps 3 (see the module doc): the final model, the parameters it was fitted with (the
    calibrated threshold and margin when ``calibrate``) and what the fit learned on the
    validation split (thresholds, drift reference)."""
    from tailorbot.models.drift import reference_of
    from tailorbot.models.intent import calibrate_fallback
    from tailorbot.models.intent.training import similarity_for_target

    val_x, val_y = _xy(parts.split.validation)
    first = parts.fit(params, parts.split.train, None).calibrate(val_x, val_y)
    probs = first.predict_proba(val_x)
    thresholds: dict[str, Any] = {"chosen_on": "cross-validation, by the search"}
    if calibrate:
        similarity = similarity_for_target(
            first, *parts.xy(parts.split.train), val_x, target_oos_recall
        )
        found = calibrate_fallback(
            probs, val_y, first.labels, wrong_answer_cost=cost,
            target_oos_recall=target_oos_recall, similarity=similarity,
        )  # fmt: skip
        params = replace(
            params,
            threshold=found.policy.threshold,
            margin=found.policy.margin,
            min_similarity=found.policy.min_similarity,
        )
        thresholds = {
            "chosen_on": "the validation split",
            "objective": (
                "in_scope_accuracy + oos_recall - wrong_answer_cost * wrong_answer_rate"
                if found.target_oos_recall is None
                else f"in_scope_accuracy at oos_recall >= {found.target_oos_recall:g}"
            ),
            "target_oos_recall": found.target_oos_recall,
        }
    top = probs.argmax(axis=1)
    reference = reference_of([first.labels[i] for i in top], probs.max(axis=1).tolist(), val_x)
    model = parts.fit(params, parts.split.selection, first.temperature)
    model.fallback = params.make_model().fallback
    thresholds.update(
        threshold=params.threshold,
        margin=params.margin,
        min_similarity=params.min_similarity,
        wrong_answer_cost=cost,
    )
    return model, params, {"thresholds": thresholds, "reference": reference}


def _card(
    model: Any,
    params: IntentParams,
    cv: CVScores,
    k: int,
    search: dict[str, Any] | None,
    test: dict[str, Any],
    fitting: dict[str, Any],
) -> dict[str, Any]:
    return {
        "model": type(model).__name__,
        "params": params.to_dict(),
        "model_params": model.params(),
        "labels": list(model.labels),
        "temperature": model.temperature,
        "cv": {"k": k, "selection_metric": "answer_score", **cv.summary()},
        "search": search,
        "test": test,
        "metrics": {**test, "split": "test"},
        **fitting,
    }


def _xy(rows: Sequence[Row]) -> tuple[list[str], list[str]]:
    return [str(r["text"]) for r in rows], [str(r["intent"]) for r in rows]


def _window(rows: Sequence[Row]) -> dict[str, Any] | None:
    stamps = [r["timestamp"] for r in rows if r.get("timestamp")]
    return {"first": min(stamps), "last": max(stamps)} if stamps else None


def _rows_hash(rows: Sequence[Row]) -> str:
    digest = hashlib.sha256()
    for row in rows:
        digest.update(f"{row['text']}\t{row['intent']}\n".encode())
    return digest.hexdigest()
