"""Score one set of intent-model hyperparameters by stratified k-fold cross-validation.

Each fold fits on the other folds and scores the held-out fold: an inner validation split is
carved from the fold's training rows by the trainer's own :func:`~.splits.split_rows` (the
trainer's share, 15 of 85; by time for logged rows), the intent model (the served kind: the
hybrid TF-IDF ⊕ static embeddings model by default, or TF-IDF alone) is fitted on the rest,
its softmax temperature on the inner split (one scalar: it leaves the ranking unchanged and
only sets the probability scale the fallback reads), and the fallback rule ``(threshold,
margin)`` of ``params`` is applied. The scored fold is never calibrated on: before 2026-11-30
the temperature was fitted on the very fold then scored, which flattered the answer score.
Unlike the trainer (:mod:`.trainer`, step 3), a fold does not refit on all its training rows
after calibrating: one fit per fold keeps a search trial's cost, and the inner split's 15 %
less data lowers every trial alike.
Where the fold's training rows are too few to spare an inner split (fewer than 3 distinct
texts of every intent) the temperature stays 1. The figure model selection maximizes is the
fallback calibration's objective (:mod:`tailorbot.models.intent.fallback`)::

    answer_score = in_scope_accuracy + oos_recall - wrong_answer_cost * wrong_answer_rate

(``oos_recall`` is 0 when the data has no ``out_of_scope`` row), so the search weighs the
n-grams and C against the fallback's thresholds in one number.

>>> texts = ["where is my card", "card not here", "card still missing", "no card yet",
...          "top up please", "add money", "top up failed", "how to add funds"] * 2
>>> labels = ["card", "card", "card", "card", "top_up", "top_up", "top_up", "top_up"] * 2
>>> scores = cross_validate(IntentParams(model="tfidf"), texts, labels, k=2)
>>> sorted(scores.summary())
['accuracy', 'answer_score', 'fallback_rate', 'macro_f1']
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np

from tailorbot.models.pipeline.splits import DEFAULT_FRACTIONS, kfold_indices, split_rows

DEFAULT_WRONG_ANSWER_COST = 0.25
SELECTION_METRIC = "answer_score"
# The inner validation's share of a fold's training rows: the trainer's validation share of
# train + validation (15 of 85).
INNER_VALIDATION = DEFAULT_FRACTIONS[1] / (DEFAULT_FRACTIONS[0] + DEFAULT_FRACTIONS[1])


@dataclass(frozen=True)
class IntentParams:
    """The searched hyperparameters of one intent-model kind (``model``: ``hybrid``, the
    served default, or ``tfidf``); ``C=None`` is the kind's own default. ``half_life_days``
    weighs each logged row by ``0.5 ** (age / half_life)`` (None: every row counts the same);
    ``class_weight`` is ``None`` or ``"balanced"``."""

    model: str = "hybrid"
    C: float | None = None
    word_ngram_max: int = 2
    char_ngram_range: tuple[int, int] = (2, 5)
    char_min_df: int = 2
    class_weight: str | None = None
    half_life_days: float | None = None
    threshold: float = 0.0
    margin: float = 0.0
    min_similarity: float | None = None  # set by calibration only (never searched)

    def model_class(self) -> Any:
        from tailorbot.models.intent.training import INTENT_MODELS

        if self.model not in INTENT_MODELS:
            raise ValueError(
                f"unknown intent model {self.model!r}; choose one of {sorted(INTENT_MODELS)}"
            )
        return INTENT_MODELS[self.model]

    def resolved(self) -> IntentParams:
        """These parameters with ``C`` filled in from the model kind's default."""
        if self.C is not None:
            return self
        default = inspect.signature(self.model_class()).parameters["C"].default
        return replace(self, C=float(default))

    def make_model(self) -> Any:
        from tailorbot.models.intent import FallbackPolicy

        return self.model_class()(
            C=self.resolved().C,
            word_ngram_range=(1, self.word_ngram_max),
            char_ngram_range=tuple(self.char_ngram_range),
            char_min_df=self.char_min_df,
            class_weight=self.class_weight,
            fallback=FallbackPolicy(
                self.threshold, self.margin, min_similarity=self.min_similarity
            ),
        )

    def weights(self, ages_days: Sequence[float] | None) -> np.ndarray | None:
        """Recency weights of rows ``ages_days`` old (None: unweighted)."""
        if self.half_life_days is None or ages_days is None:
            return None
        return np.power(0.5, np.asarray(ages_days, dtype=float) / self.half_life_days)

    def to_dict(self) -> dict[str, Any]:
        values = asdict(self.resolved())
        values["char_ngram_range"] = list(self.char_ngram_range)
        return values

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> IntentParams:
        values = dict(values)
        if "char_ngram_range" in values:
            values["char_ngram_range"] = tuple(values["char_ngram_range"])
        return cls(**values)


@dataclass
class CVScores:
    folds: list[dict[str, float]] = field(default_factory=list)

    def summary(self) -> dict[str, dict[str, float]]:
        """Mean and (sample) standard deviation of each metric over the folds."""
        out = {}
        for name in self.folds[0] if self.folds else ():
            found = [f[name] for f in self.folds if f.get(name) is not None]
            if not found:  # e.g. oos_recall without out_of_scope rows
                continue
            values = np.asarray(found, dtype=float)
            std = float(values.std(ddof=1)) if len(values) > 1 else 0.0
            out[name] = {"mean": float(values.mean()), "std": std}
        return out

    def mean(self, name: str = SELECTION_METRIC) -> float:
        return float(np.mean([f[name] for f in self.folds]))


def fold_metrics(
    model: Any, texts: Sequence[str], gold: Sequence[str], wrong_answer_cost: float
) -> dict[str, Any]:
    """The intent metrics (:data:`~tailorbot.models.intent.METRIC_NAMES`; the out-of-scope
    ones None without ``out_of_scope`` rows), the fallback rate and the answer score of a
    fitted model."""
    from tailorbot.models.intent import OUT_OF_SCOPE, metrics_from_predictions

    probs = model.predict_proba(texts)
    names = np.asarray(model.labels, dtype=object)[probs.argmax(axis=1)]
    fired = model.fallback_fires(texts, probs)
    m = metrics_from_predictions(gold, names, fired)
    gold_arr = np.asarray(gold, dtype=object)
    in_scope = gold_arr != OUT_OF_SCOPE
    answered = ~fired
    n_in = max(1, int(in_scope.sum()))
    right = float((answered & (names == gold_arr) & in_scope).sum()) / n_in
    wrong = float((answered & (names != gold_arr) & in_scope).sum()) / n_in
    caught = float((fired & ~in_scope).sum()) / max(1, int((~in_scope).sum()))
    return {
        **m.to_dict(),
        "fallback_rate": m.fallback_rate,
        "answer_score": right + caught - wrong_answer_cost * wrong,
    }


def cross_validate(
    params: IntentParams,
    texts: Sequence[str],
    labels: Sequence[str],
    *,
    k: int = 5,
    seed: int = 0,
    wrong_answer_cost: float = DEFAULT_WRONG_ANSWER_COST,
    after_fold: Callable[[int, CVScores], None] | None = None,
    base: tuple[Sequence[str], Sequence[str]] = ((), ()),
    ages_days: Sequence[float] | None = None,
) -> CVScores:
    """Score ``params`` on ``k`` stratified folds; ``after_fold(i, scores)`` may raise to stop
    early (the search's pruner does). ``base`` (texts, labels) joins every fold's training
    side, never a validation fold: a base corpus the logged labels add to (weight 1).
    ``ages_days`` (one per text) feeds the recency weights of ``params``; validation folds are
    scored unweighted."""
    scores = CVScores()
    rows = _Rows(params, list(texts), labels, params.weights(ages_days), base, ages_days, seed)
    # Copies of one text share a fold: a held-out copy of a trained text measures memory.
    folds = kfold_indices(labels, k, seed, groups=rows.texts)
    for i, (train, val) in enumerate(folds):
        model = rows.fit_calibrated(train)
        fold_val = [rows.texts[j] for j in val]
        gold_val = [labels[j] for j in val]
        scores.folds.append(fold_metrics(model, fold_val, gold_val, wrong_answer_cost))
        if after_fold is not None:
            after_fold(i, scores)
    return scores


def fit_with_base(
    params: IntentParams,
    texts: Sequence[str],
    labels: Sequence[str],
    base: tuple[Sequence[str], Sequence[str]],
    temperature: float | None = None,
    weights: Sequence[float] | np.ndarray | None = None,
) -> Any:
    """``params``' model fitted on ``texts`` + the ``base`` corpus (weight 1 beside the
    rows' recency ``weights``), with the similarity index a floor in ``params`` reads: the
    fit of every CV fold and of the trainer."""
    all_texts, all_labels = [*texts, *base[0]], [*labels, *base[1]]
    sample_weight = None
    if weights is not None:
        sample_weight = np.concatenate([np.asarray(weights, dtype=float), np.ones(len(base[0]))])
    model = params.make_model().fit(
        all_texts, all_labels, temperature=temperature, sample_weight=sample_weight
    )
    if params.min_similarity is not None:
        model.index_similarity(all_texts, all_labels)
    return model


@dataclass(frozen=True)
class _Rows:
    """What every fold fits from: the rows, their recency weights and ages, the base corpus."""

    params: IntentParams
    texts: list[str]
    labels: Sequence[str]
    weights: np.ndarray | None
    base: tuple[Sequence[str], Sequence[str]]
    ages_days: Sequence[float] | None
    seed: int

    def fit(self, rows: Sequence[int], temperature: float | None) -> Any:
        """``params``' model fitted on rows ``rows`` + the base corpus (weight 1)."""
        weights = None if self.weights is None else self.weights[list(rows)]
        return fit_with_base(
            self.params,
            [self.texts[j] for j in rows],
            [self.labels[j] for j in rows],
            self.base,
            temperature,
            weights,
        )

    def fit_calibrated(self, train: np.ndarray) -> Any:
        """The model for a fold trained on rows ``train``: split off an inner validation
        split as the trainer does, fit on the other rows, fit the temperature on it."""
        ages = self.ages_days
        rows = [
            {"text": self.texts[j], "intent": self.labels[j], "row": int(j),
             "epoch": 0.0 if ages is None else -float(ages[j])}
            for j in train
        ]  # fmt: skip
        inner = split_rows(
            rows, (1.0 - INNER_VALIDATION, INNER_VALIDATION, 0.0),
            by_time=ages is not None, seed=self.seed,
        )  # fmt: skip
        if not inner.validation:  # too few rows to spare any: the temperature stays 1
            return self.fit(train.tolist(), None)
        # Scored as fitted on the inner training rows, not refit on all of ``train`` as the
        # trainer does: one fit per fold, so a trial costs what it did before the split.
        return self.fit([int(r["row"]) for r in inner.train], None).calibrate(
            [str(r["text"]) for r in inner.validation], [str(r["intent"]) for r in inner.validation]
        )
