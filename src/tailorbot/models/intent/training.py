"""Train an intent model end to end: split, fit, calibrate, measure, refit.

This is the model's own quick procedure (test fixtures, the intent-model benchmarks);
``tailorbot train`` runs the learning pipeline instead (:mod:`tailorbot.models.pipeline`:
70/15/15, k-fold CV and search, one test, the promotion gate).

1. Hold out a stratified validation split (``validation_fraction`` of each intent; intents
   with a single row stay in training).
2. Fit on the rest, fit the softmax temperature on validation, then calibrate the fallback
   rule there (:func:`~tailorbot.models.intent.fallback.calibrate_fallback`).
3. Report accuracy, macro-F1 and the fallback metrics on validation.
4. Refit on all rows (``refit=True``), keeping the temperature and fallback learned on held-out
   data: the shipped model sees every example, the reported metrics stay honest estimates of
   the procedure.

>>> from tailorbot.models.intent.dataset import IntentDataset
>>> data = IntentDataset(("where is my card", "card not here yet", "top up please",
...                       "add money", "weather today", "a joke"),
...                      ("card_arrival", "card_arrival", "top_up", "top_up",
...                       "out_of_scope", "out_of_scope"))
>>> trained = train_intent_model(data, validation_fraction=0.5)
>>> sorted(trained.metadata)[:4]
['labels', 'metrics', 'model', 'params']
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from tailorbot.models.drift import reference_of
from tailorbot.models.intent.dataset import IntentDataset
from tailorbot.models.intent.encoder_hybrid import EncoderHybridIntentModel
from tailorbot.models.intent.evaluation import evaluate_intent_model
from tailorbot.models.intent.fallback import calibrate_fallback
from tailorbot.models.intent.hybrid import HybridIntentModel
from tailorbot.models.intent.routed import LanguageRoutedIntentModel
from tailorbot.models.intent.tfidf import TfidfIntentModel

INTENT_MODELS: dict[str, Callable[[], TfidfIntentModel]] = {
    "hybrid": HybridIntentModel,
    "hybrid+minilm": EncoderHybridIntentModel,
    "tfidf": TfidfIntentModel,
}


@dataclass(frozen=True)
class TrainedIntentModel:
    """The fitted model and the metadata the registry stores next to it."""

    model: TfidfIntentModel | LanguageRoutedIntentModel
    metadata: dict[str, Any]


def stratified_split(
    dataset: IntentDataset, fraction: float, seed: int = 0
) -> tuple[IntentDataset, IntentDataset]:
    """Split ``(train, validation)``: ``round(fraction * n)`` rows of each intent to validation.

    Every intent keeps at least one training row; the same seed gives the same split.
    """
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"validation fraction must be in (0, 1), got {fraction!r}")
    rng = np.random.default_rng(seed)
    by_label: dict[str, list[int]] = {}
    for i, label in enumerate(dataset.labels):
        by_label.setdefault(label, []).append(i)
    validation: list[int] = []
    for label in sorted(by_label):
        rows = by_label[label]
        take = min(round(fraction * len(rows)), len(rows) - 1)
        if take > 0:
            validation.extend(int(i) for i in rng.permutation(rows)[:take])
    chosen = set(validation)
    train = [i for i in range(len(dataset)) if i not in chosen]
    return dataset.subset(train), dataset.subset(sorted(validation))


def similarity_for_target(
    model: Any,
    train_texts: Sequence[str],
    train_labels: Sequence[str],
    validation_texts: Sequence[str],
    target_oos_recall: float | None,
) -> np.ndarray | None:
    """The validation rows' similarity to the training messages (indexing them in
    ``model``), for the fallback's similarity rule; ``None`` without a recall target, or for
    a model without embeddings. The rule costs a product with every training message per
    served message, so only an operator's recall target considers it: the out-of-scope class
    meets the default trade-off alone (docs/intent.md)."""
    if target_oos_recall is None or not isinstance(model, HybridIntentModel):
        return None
    return model.index_similarity(train_texts, train_labels).similarity(validation_texts)


def train_intent_model(
    dataset: IntentDataset,
    *,
    seed: int = 0,
    validation_fraction: float = 0.15,
    refit: bool = True,
    wrong_answer_cost: float = 0.25,
    target_oos_recall: float | None = None,
    make_model: Callable[[], TfidfIntentModel] = HybridIntentModel,
) -> TrainedIntentModel:
    """Train, calibrate and measure a model on ``dataset`` (see the module doc for the steps)."""
    started = time.perf_counter()
    train, validation = stratified_split(dataset, validation_fraction, seed)
    if not len(validation):
        raise ValueError(
            "no row left for validation: give each intent at least 2 examples "
            "or raise the validation fraction"
        )
    model = (
        make_model().fit(train.texts, train.labels).calibrate(validation.texts, validation.labels)
    )
    probs = model.predict_proba(validation.texts)
    calibration = calibrate_fallback(
        probs,
        validation.labels,
        model.labels,
        wrong_answer_cost=wrong_answer_cost,
        target_oos_recall=target_oos_recall,
        similarity=similarity_for_target(
            model, train.texts, train.labels, validation.texts, target_oos_recall
        ),
    )
    model.fallback = calibration.policy
    if calibration.policy.min_similarity is None and isinstance(model, HybridIntentModel):
        model.index_similarity([], [])  # not read: leave the index out of the model
    metrics = evaluate_intent_model(model, validation.texts, validation.labels)
    # What serving will be compared with for drift: the validation rows as the model saw them.
    top = probs.argmax(axis=1)
    reference = reference_of(
        [model.labels[i] for i in top], probs.max(axis=1).tolist(), validation.texts
    )
    if refit:
        final = make_model().fit(dataset.texts, dataset.labels, temperature=model.temperature)
        final.fallback = calibration.policy
        if calibration.policy.min_similarity is not None and isinstance(final, HybridIntentModel):
            final.index_similarity(dataset.texts, dataset.labels)
        model = final
    seconds = time.perf_counter() - started
    metadata = {
        "model": type(model).__name__,
        "params": model.params(),
        "labels": list(model.labels),
        "metrics": {
            **metrics.to_dict(),
            "split": "validation",
            "n_validation": len(validation),
            "n_validation_out_of_scope": validation.n_out_of_scope,
            "fallback_rate": metrics.fallback_rate,
        },
        "thresholds": {
            **calibration.policy.to_dict(),
            "objective": (
                "in_scope_accuracy + oos_recall - wrong_answer_cost * wrong_answer_rate"
                if calibration.target_oos_recall is None
                else f"in_scope_accuracy at oos_recall >= {calibration.target_oos_recall:g}"
            ),
            "objective_value": calibration.objective,
            "target_oos_recall": calibration.target_oos_recall,
            "wrong_answer_cost": calibration.wrong_answer_cost,
        },
        "temperature": model.temperature,
        "reference": reference,
        "training_data_hash": "sha256:" + dataset.content_hash(),
        "training": {
            "source": dataset.source,
            "n_rows": len(dataset),
            "n_out_of_scope": dataset.n_out_of_scope,
            "renamed_labels": dict(dataset.renamed),
            "seed": seed,
            "validation_fraction": validation_fraction,
            "refit_on_all_rows": refit,
            "seconds": round(seconds, 3),
        },
    }
    return TrainedIntentModel(model, metadata)


def train_language_routed_model(
    datasets: Mapping[str, IntentDataset],
    *,
    default_language: str = "en",
    detect_languages: Sequence[str] = (),
    **options: Any,
) -> TrainedIntentModel:
    """One model per language (each by :func:`train_intent_model` with ``options``), routed by
    the detected language of each message; the metadata is the default language's, plus the
    validation metrics of every language under ``languages``."""
    trained = {language: train_intent_model(data, **options) for language, data in datasets.items()}
    if default_language not in trained:
        raise ValueError(f"no training data for the default language {default_language!r}")
    model = LanguageRoutedIntentModel.detecting(
        {language: t.model for language, t in trained.items()}, default_language, detect_languages
    )
    metadata = {
        **trained[default_language].metadata,
        "model": type(model).__name__,
        "default_model": trained[default_language].metadata["model"],
        "default_language": default_language,
        "detect_languages": list(detect_languages),
        "languages": {
            language: {"metrics": t.metadata["metrics"], "training": t.metadata["training"]}
            for language, t in trained.items()
        },
    }
    return TrainedIntentModel(model, metadata)
