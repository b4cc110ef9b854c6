"""Hyperparameter search with Optuna: TPE sampling, a trial and a time budget, pruning.

The first trial is always the model's defaults (so the report can say what the search gained
over them). Each trial runs :func:`~tailorbot.models.pipeline.crossval.cross_validate`; after
every fold it reports the running mean of the answer score and a median pruner stops trials
that trail the median of earlier trials at the same fold. The study stops at ``n_trials`` or
after ``timeout_s`` seconds, whichever comes first (the running trial finishes).

Searched: ``C`` (log scale), the word n-gram range (1-1 to 1-3), the character n-gram range,
the character n-grams' minimum document frequency, and the fallback's threshold and margin.

>>> texts = ["where is my card", "card not here", "card still missing", "no card yet",
...          "top up please", "add money", "top up failed", "how to add funds"] * 2
>>> labels = ["card"] * 4 + ["top_up"] * 4 + ["card"] * 4 + ["top_up"] * 4
>>> result = search_intent_params(texts, labels, k=2, n_trials=2, timeout_s=60)
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


def _suggest(trial: Any) -> IntentParams:
    low, high = (int(x) for x in trial.suggest_categorical("char_ngrams", CHAR_RANGES).split("-"))
    return IntentParams(
        C=trial.suggest_float("C", 0.05, 5.0, log=True),
        word_ngram_max=trial.suggest_int("word_ngram_max", 1, 3),
        char_ngram_range=(low, high),
        char_min_df=trial.suggest_int("char_min_df", 1, 3),
        threshold=trial.suggest_float("threshold", 0.0, 0.6, step=0.025),
        margin=trial.suggest_float("margin", 0.0, 0.3, step=0.025),
    )


def _as_trial_values(params: IntentParams) -> dict[str, Any]:
    low, high = params.char_ngram_range
    return {
        "C": params.C,
        "word_ngram_max": params.word_ngram_max,
        "char_ngrams": f"{low}-{high}",
        "char_min_df": params.char_min_df,
        "threshold": params.threshold,
        "margin": params.margin,
    }


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
) -> SearchResult:
    """Run the study (see the module doc); the best trial's folds are kept for the report."""
    try:
        import optuna
    except ImportError:
        raise RuntimeError(
            "the search needs optuna: pip install 'tailorbot[learning]' (or use --no-search)"
        ) from None
    if n_trials < 1 or timeout_s <= 0:
        raise ValueError("the search needs n_trials >= 1 and timeout_s > 0")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    started = time.perf_counter()
    study = optuna.create_study(
        direction="maximize",
        sampler=optuna.samplers.TPESampler(seed=seed),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=1),
    )
    study.enqueue_trial(_as_trial_values(IntentParams()))
    folds: dict[int, CVScores] = {}

    def objective(trial: Any) -> float:
        params = _suggest(trial)

        def report(i: int, scores: CVScores) -> None:
            trial.report(scores.mean(), step=i)
            if trial.should_prune():
                raise optuna.TrialPruned()

        scores = cross_validate(
            params,
            texts,
            labels,
            k=k,
            seed=seed,
            wrong_answer_cost=wrong_answer_cost,
            after_fold=report,
            base=base,
        )
        folds[trial.number] = scores
        return scores.mean()

    study.optimize(objective, n_trials=n_trials, timeout=timeout_s, gc_after_trial=True)
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    if not complete:
        raise RuntimeError("no search trial completed within the budget; raise --timeout")
    best = study.best_trial
    first = study.trials[0]
    return SearchResult(
        best=_params_of(best.params),
        best_scores=folds[best.number],
        default_score=first.value if first.state == optuna.trial.TrialState.COMPLETE else None,
        n_trials=len(study.trials),
        n_pruned=sum(t.state == optuna.trial.TrialState.PRUNED for t in study.trials),
        seconds=time.perf_counter() - started,
    )


def _params_of(values: dict[str, Any]) -> IntentParams:
    low, high = (int(x) for x in str(values["char_ngrams"]).split("-"))
    return IntentParams(
        C=float(values["C"]),
        word_ngram_max=int(values["word_ngram_max"]),
        char_ngram_range=(low, high),
        char_min_df=int(values["char_min_df"]),
        threshold=float(values["threshold"]),
        margin=float(values["margin"]),
    )
