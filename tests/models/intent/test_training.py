from __future__ import annotations

from collections import Counter

import pytest

from tailorbot.models.intent import (
    OUT_OF_SCOPE,
    IntentDataset,
    evaluate_intent_model,
    stratified_split,
    train_intent_model,
)
from tests.models.intent.support import SLICE_INTENTS, small_dataset


@pytest.fixture(scope="module")
def trained():
    return train_intent_model(small_dataset(), seed=1)


def test_stratified_split_keeps_every_intent_in_training() -> None:
    data = IntentDataset(
        ("a1", "a2", "a3", "a4", "b1", "c1", "c2"), ("a",) * 4 + ("b",) + ("c",) * 2
    )
    train, validation = stratified_split(data, 0.5, seed=0)
    assert Counter(validation.labels) == {"a": 2, "c": 1}
    assert Counter(train.labels) == {"a": 2, "b": 1, "c": 1}
    assert sorted(train.texts + validation.texts) == sorted(data.texts)
    assert stratified_split(data, 0.5, seed=0) == (train, validation)
    with pytest.raises(ValueError, match="fraction"):
        stratified_split(data, 1.0)


def test_metadata(trained) -> None:
    meta = trained.metadata
    assert meta["labels"] == sorted([*SLICE_INTENTS, OUT_OF_SCOPE])
    assert set(meta["metrics"]) >= {"accuracy", "macro_f1", "in_scope_accuracy", "oos_recall"}
    assert 0.5 < meta["metrics"]["accuracy"] <= 1.0
    assert set(meta["thresholds"]) >= {"threshold", "margin", "objective", "wrong_answer_cost"}
    assert meta["training_data_hash"] == "sha256:" + small_dataset().content_hash()
    assert meta["training"]["n_rows"] == len(small_dataset())
    assert meta["temperature"] == trained.model.temperature
    policy = trained.model.fallback
    assert (policy.threshold, policy.margin) == (
        meta["thresholds"]["threshold"],
        meta["thresholds"]["margin"],
    )


def test_fallback_fires_on_out_of_scope_text(trained) -> None:
    model = trained.model
    for text in [
        "What's the best pizza topping?",
        "can you sing me a song",
        "How do I fix my leaking washing machine?",
        "Who won the football last night?",
    ]:
        prediction = model.predict_one(text)
        assert prediction.fallback.triggered, (text, prediction)
    answered = model.predict_one("My new card still hasn't arrived, where is it?")
    assert answered.name == "card_arrival"
    assert not answered.fallback.triggered


def test_held_out_quality_of_the_slice(trained) -> None:
    test = small_dataset("test")
    metrics = evaluate_intent_model(trained.model, test.texts, test.labels)
    assert metrics.accuracy > 0.85
    assert metrics.oos_recall is not None and metrics.oos_recall > 0.85


def test_too_small_for_validation() -> None:
    data = IntentDataset(("a", "b"), ("x", "y"))
    with pytest.raises(ValueError, match="no row left for validation"):
        train_intent_model(data)
