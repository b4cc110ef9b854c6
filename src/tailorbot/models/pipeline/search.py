"""Hyperparameter search with Optuna: TPE sampling, a trial and a time budget, pruning.

The first trial is always the model's defaults (so the report can say what the search gained
over them). Each trial runs :func:`~tailorbot.models.pipeline.crossval.cross_validate`; after
every fold it reports the running mean of the answer score and a median pruner stops trials
that trail the median of earlier trials at the same fold. The study stops at ``n_trials`` or
after ``timeout_s`` seconds, whichever comes first (the running trial finishes).

Searched: ``C`` (log scale), the word n-gram range (1-1 to 1-3), the character n-gram range,
the character n-grams' minimum document frequency, the class weights (none or balanced), the
fallback's threshold and margin and, for rows from a log (``ages_days`` given), the recency
half-life of the sample weights: none, or 1/8, 1/4, 1/2 or all of the data's time span.

>>> texts = ["where is my card", "card not here", "card still missing", "no card yet",
...          "top up please", "add money", "top up failed", "how to add funds"] * 2
>>> labels = ["card"] * 4 + ["top_up"] * 4 + ["card"] * 4 + ["top_up"] * 4
>>> result = search_intent_params(texts, labels, k=2, n_trials=2, timeout_s=60, model="tfidf")
>>> result.n_trials, result.default_score is not None
(2, True)
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from tailorbot.models.pipeline.crossval import (
    DEFAULT_WRONG_ANSWER_COST,
    CVScores,
    IntentParams,
    cross_validate,
)

DEFAULT_TRIALS = 12
DEFAULT_TIMEOUT_S = 240.0
CHAR_RANGES = ("2-4", "2-5", "3-5", "1-4")
CLASS_WEIGHTS = ("none", "balanced")
# Recency half-lives, as shares of the data's time span ("none": unweighted).
RECENCY = {"none": None, "1/8": 0.125, "1/4": 0.25, "1/2": 0.5, "1": 1.0}


@dataclass(frozen=True)
class SearchResult:
    best: IntentParams
    best_scores: CVScores
    default_score: float | None  # CV answer score of the defaults (None if that trial pruned)
    n_trials: int
    n_pruned: int
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        best = self.best_scores.mean()
        return {
            "sampler": "TPE",
            "pruner": "median",
            "trials": self.n_trials,
            "pruned": self.n_pruned,
            "seconds": round(self.seconds, 1),
            "best_answer_score": best,
            "default_answer_score": self.default_score,
            "gain_over_defaults": None if self.default_score is None else best - self.default_score,
        }


@dataclass(frozen=True)
class SearchSpace:
    """What a trial may choose: the model kind is fixed; the recency half-life is searched
    only when the rows span some time (``span_days`` > 0)."""

    model: str = "hybrid"
    span_days: float = 0.0

    def suggest(self, trial: Any) -> IntentParams:
        chars = trial.suggest_categorical("char_ngrams", CHAR_RANGES)
        low, high = (int(x) for x in chars.split("-"))
        weight = trial.suggest_categorical("class_weight", CLASS_WEIGHTS)
        half_life = None
        if self.span_days > 0:
            share = RECENCY[trial.suggest_categorical("recency", tuple(RECENCY))]
            half_life = None if share is None else share * self.span_days
        return IntentParams(
            model=self.model,
            C=trial.suggest_float("C", 0.05, 5.0, log=True),
            word_ngram_max=trial.suggest_int("word_ngram_max", 1, 3),
            char_ngram_range=(low, high),
            char_min_df=trial.suggest_int("char_min_df", 1, 3),
            class_weight=None if weight == "none" else weight,
            half_life_days=half_life,
            threshold=trial.suggest_float("threshold", 0.0, 0.6, step=0.025),
            margin=trial.suggest_float("margin", 0.0, 0.3, step=0.025),
        )

    def defaults(self) -> dict[str, Any]:
        """The trial values of the model's defaults (the study's first trial)."""
        params = IntentParams(model=self.model).resolved()
        low, high = params.char_ngram_range
        values: dict[str, Any] = {
            "C": params.C,
            "word_ngram_max": params.word_ngram_max,
            "char_ngrams": f"{low}-{high}",
            "char_min_df": params.char_min_df,
            "class_weight": "none",
            "threshold": params.threshold,
            "margin": params.margin,
        }
        if self.span_days > 0:
            values["recency"] = "none"
        return values


def search_intent_params(
    texts: Sequence[str],
    labels: Sequence[str],
    *,
    k: int = 5,
    n_trials: int = DEFAULT_TRIALS,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    seed: int = 0,
    wrong_answer_cost: float = DEFAULT_WRONG_ANSWER_COST,
    base: tuple[Sequence[str], Sequence[str]] = ((), ()),
    model: str = "hybrid",
    ages_days: Sequence[float] | None = None,
) -> SearchResult:
    """Run the study (see the module doc); the best trial's folds are kept for the report."""
    optuna = _optuna()
    if n_trials < 1 or timeout_s <= 0:
        raise ValueError("the search needs n_trials >= 1 and timeout_s > 0")
    started = time.perf_counter()
    space = SearchSpace(model, max(ages_days) if ages_days is not None and len(ages_days) else 0.0)
    study = optuna.create_study(
        direction="maximize",
        sampler=optuna.samplers.TPESampler(seed=seed),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=1),
    )
    study.enqueue_trial(space.defaults())
    folds: dict[int, CVScores] = {}

    def objective(trial: Any) -> float:
        def report(i: int, scores: CVScores) -> None:
            trial.report(scores.mean(), step=i)
            if trial.should_prune():
                raise optuna.TrialPruned()

        scores = cross_validate(
            space.suggest(trial), texts, labels, k=k, seed=seed, base=base,
            wrong_answer_cost=wrong_answer_cost, after_fold=report, ages_days=ages_days,
        )  # fmt: skip
        folds[trial.number] = scores
        return scores.mean()

    study.optimize(objective, n_trials=n_trials, timeout=timeout_s, gc_after_trial=True)
    return _result(optuna, study, space, folds, time.perf_counter() - started)


def _optuna() -> Any:
    try:
        import optuna
    except ImportError:
        raise RuntimeError(
            "the search needs optuna: pip install 'tailorbot[learning]' (or use --no-search)"
        ) from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


def _result(
    optuna: Any, study: Any, space: SearchSpace, folds: dict[int, CVScores], seconds: float
) -> SearchResult:
    complete = optuna.trial.TrialState.COMPLETE
    if not any(t.state == complete for t in study.trials):
        raise RuntimeError("no search trial completed within the budget; raise --timeout")
    best = study.best_trial
    first = study.trials[0]
    return SearchResult(
        best=space.suggest(optuna.trial.FixedTrial(best.params)),
        best_scores=folds[best.number],
        default_score=first.value if first.state == complete else None,
        n_trials=len(study.trials),
        n_pruned=sum(t.state == optuna.trial.TrialState.PRUNED for t in study.trials),
        seconds=seconds,
    )
