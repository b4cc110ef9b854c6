"""Language-routed intent models through the pipeline: one run per language, one served model.

Each language's rows go through :func:`~tailorbot.models.pipeline.trainer.train_intent` on
their own (their own 70/15/15 split, k-fold CV, search and test), and the fitted models are
routed by the detected language of each message
(:class:`~tailorbot.models.intent.routed.LanguageRoutedIntentModel`, what servers load). Rows
without a ``language`` are tagged with the language they were given for, so the audit and
the gate see each language's held-out rows as such.

The card is the default language's, with every language's own figures under ``languages``;
its ``test`` is the routed model scored once on the union of the languages' test rows (what a
mixed stream of customers gets, detection errors included), and ``data`` counts every row.

>>> rows = [{"text": t, "intent": i} for t, i in [
...     ("where is my card", "card"), ("card not here", "card"), ("no card yet", "card"),
...     ("card still missing", "card"), ("my card?", "card"), ("card late", "card"),
...     ("top up please", "top_up"), ("add money", "top_up"), ("top up failed", "top_up"),
...     ("how to add funds", "top_up"), ("topping up", "top_up"), ("load money", "top_up")]] * 3
>>> run = train_routed({"en": rows}, search=False, k=2, model="tfidf")
>>> run.card["model"], run.card["default_model"], sorted(run.card["languages"])
('LanguageRoutedIntentModel', 'TfidfIntentModel', ['en'])
>>> {r["language"] for r in run.test_rows}
{'en'}
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from tailorbot.config import Settings
from tailorbot.models.pipeline.crossval import DEFAULT_WRONG_ANSWER_COST, fold_metrics
from tailorbot.models.pipeline.trainer import Row, TrainingRun, train_intent

# What the card keeps of each language's own run.
LANGUAGE_FIGURES = ("model", "params", "cv", "search", "test", "thresholds", "data")


def served_model_options(settings: Settings) -> dict[str, Any]:
    """The :func:`train_routed` options that make the model the kind servers load: the model
    kind, the languages it routes by, the fallback's recall target."""
    return {
        "model": settings.intent_model,
        "default_language": settings.intent_language,
        "detect_languages": settings.detect_languages,
        "target_oos_recall": settings.fallback_target_recall,
    }


def train_routed(
    rows_by_language: Mapping[str, Sequence[Row]],
    *,
    default_language: str = "en",
    detect_languages: Sequence[str] = (),
    sources: Mapping[str, str] | None = None,
    base: Sequence[Row] = (),
    **options: Any,
) -> TrainingRun:
    """One :func:`train_intent` run per language (``options`` are its keyword arguments),
    routed; ``sources`` names each language's data for its card; the ``base`` corpus joins
    the default language's training side only."""
    from tailorbot.models.intent.routed import LanguageRoutedIntentModel

    if default_language not in rows_by_language:
        raise ValueError(f"no training data for the default language {default_language!r}")
    runs: dict[str, TrainingRun] = {}
    for language, rows in rows_by_language.items():
        tagged = [{**r, "language": r.get("language") or language} for r in rows]
        source = (sources or {}).get(language, options.get("source", "rows"))
        extra = base if language == default_language else ()
        runs[language] = train_intent(tagged, **{**options, "source": source, "base": extra})
    model = LanguageRoutedIntentModel.detecting(
        {language: run.model for language, run in runs.items()}, default_language, detect_languages
    )
    test_rows = [row for run in runs.values() for row in run.test_rows]
    cost = options.get("wrong_answer_cost", DEFAULT_WRONG_ANSWER_COST)
    texts, gold = [str(r["text"]) for r in test_rows], [str(r["intent"]) for r in test_rows]
    test = {**fold_metrics(model, texts, gold, cost), "n": len(test_rows)}
    default = runs[default_language].card
    card = {
        **default,
        "model": type(model).__name__,
        "default_model": default["model"],
        "default_language": default_language,
        "detect_languages": list(detect_languages),
        "languages": {
            language: {name: run.card.get(name) for name in LANGUAGE_FIGURES}
            for language, run in runs.items()
        },
        "test": test,
        "metrics": {**test, "split": "test"},
        "data": _data(runs, default_language),
    }
    keys = frozenset().union(*(run.trained_keys for run in runs.values()))
    return TrainingRun(model, card, test_rows, keys)


def _data(runs: Mapping[str, TrainingRun], default_language: str) -> dict[str, Any]:
    """The default language's data figures, with rows and split sizes over every language."""
    data = dict(runs[default_language].card["data"])
    if len(runs) == 1:
        return data
    cards = [run.card["data"] for run in runs.values()]
    data["rows"] = sum(d["rows"] for d in cards)
    data["base_rows"] = sum(d["base_rows"] for d in cards)
    data["splits"] = {
        part: sum(d["splits"][part] for d in cards) for part in ("train", "validation", "test")
    }
    windows = [d["window"] for d in cards if d.get("window")]
    if windows:
        data["window"] = {"first": min(w["first"] for w in windows),
                          "last": max(w["last"] for w in windows)}  # fmt: skip
    data["source"] = ", ".join(f"{language}: {run.card['data']['source']}"
                               for language, run in runs.items())  # fmt: skip
    return data
