from __future__ import annotations

import copy
import pickle

import numpy as np
import pytest

from tailorbot.models.intent import (
    OUT_OF_SCOPE,
    FallbackPolicy,
    TfidfIntentModel,
    bundled_dataset,
)
from tests.models.intent.support import small_dataset


@pytest.fixture(scope="module")
def model() -> TfidfIntentModel:
    data = small_dataset()
    return TfidfIntentModel().fit(data.texts, data.labels)


def test_labels_and_probabilities(model: TfidfIntentModel) -> None:
    assert OUT_OF_SCOPE in model.labels
    assert len(model.labels) == 9
    probs = model.predict_proba(["where is my card", "what is the weather in Rome"])
    assert probs.shape == (2, 9)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0)
    assert model.labels[int(probs[0].argmax())] == "card_arrival"


def test_predict_one_matches_the_batch_path(model: TfidfIntentModel) -> None:
    texts = list(small_dataset("test").texts[:150]) + ["", "   ", "€€€ ünïcödé ??", "I"]
    batch = model.predict_proba(texts)
    for text, row in zip(texts, batch, strict=True):
        one = model.predict_one(text)
        expected = sorted(zip(model.labels, row, strict=True), key=lambda x: -x[1])[:5]
        assert [name for name, _ in one.ranking] == [name for name, _ in expected]
        np.testing.assert_allclose([p for _, p in one.ranking], [p for _, p in expected], atol=1e-6)
        assert one.name == expected[0][0]
        assert one.confidence == one.ranking[0][1]


def test_ranking_is_top_five_sorted(model: TfidfIntentModel) -> None:
    prediction = model.predict_one("I lost my card yesterday")
    assert prediction.name == "lost_or_stolen_card"
    assert len(prediction.ranking) == 5
    probs = [p for _, p in prediction.ranking]
    assert probs == sorted(probs, reverse=True)
    assert prediction.to_dict()["ranking"][0] == {"name": prediction.name, "confidence": probs[0]}


def test_fallback_policy_is_applied(model: TfidfIntentModel) -> None:
    model = copy.deepcopy(model)
    assert (
        model.predict_one("can you recommend a good pizza place").fallback.reason == "out_of_scope"
    )
    model.fallback = FallbackPolicy(threshold=1.0)
    assert model.predict_one("where is my card").fallback.reason == "low_confidence"


def test_calibration_changes_confidence_not_ranking() -> None:
    data = small_dataset()
    held_out = small_dataset("test")
    model = TfidfIntentModel().fit(data.texts, data.labels)
    before = model.predict_proba(held_out.texts)
    model.calibrate(held_out.texts, held_out.labels)
    after = model.predict_proba(held_out.texts)
    assert model.temperature != 1.0
    np.testing.assert_array_equal(before.argmax(axis=1), after.argmax(axis=1))
    # a fitted temperature lowers the held-out negative log-likelihood
    gold = [model.labels.index(label) for label in held_out.labels]
    rows = np.arange(len(gold))
    assert -np.log(after[rows, gold]).mean() < -np.log(before[rows, gold]).mean()


def test_pickle_round_trip_predicts_the_same(model: TfidfIntentModel) -> None:
    model.predict_one("warm the single-text path up")
    copy = pickle.loads(pickle.dumps(model))
    for text in ["where is my card", "tell me a joke", "how much to withdraw cash"]:
        assert copy.predict_one(text) == model.predict_one(text)


def test_binary_model() -> None:
    texts = ["where is my card", "card not arrived", "tell me a joke", "weather today"]
    labels = ["card_arrival", "card_arrival", OUT_OF_SCOPE, OUT_OF_SCOPE]
    model = TfidfIntentModel().fit(texts, labels)
    assert model.predict_one("my card has not arrived").name == "card_arrival"
    assert model.predict_one("a joke about the weather").fallback.triggered
    assert model.predict_proba(texts).shape == (4, 2)


def test_errors() -> None:
    with pytest.raises(RuntimeError, match="not fitted"):
        TfidfIntentModel().predict_one("hello")
    with pytest.raises(ValueError, match="at least 2 distinct intents"):
        TfidfIntentModel().fit(["a b", "c d"], ["x", "x"])
    with pytest.raises(ValueError, match="2 texts but 1 labels"):
        TfidfIntentModel().fit(["a b", "c d"], ["x"])
    fitted = TfidfIntentModel().fit(["where is my card", "hello there"], ["a", "b"])
    with pytest.raises(TypeError, match="must be a str"):
        fitted.predict_one(None)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="knows"):
        fitted.calibrate(["x"], ["unknown"])


@pytest.mark.slow
def test_full_banking77_accuracy() -> None:
    """The default model on all Banking77 training rows reaches >= 91 % test accuracy."""
    train, test = bundled_dataset("banking77", "train"), bundled_dataset("banking77", "test")
    model = TfidfIntentModel().fit(train.texts, train.labels)
    probs = model.predict_proba(test.texts)
    predicted = np.asarray(model.labels, dtype=object)[probs.argmax(axis=1)]
    assert (predicted == np.asarray(test.labels, dtype=object)).mean() >= 0.91
