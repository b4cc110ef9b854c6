"""The fallback's similarity floor: nearest training message in the embedding space."""

from __future__ import annotations

import pickle
from dataclasses import replace
from typing import Any

import numpy as np
import pytest

from tailorbot.models.intent import OUT_OF_SCOPE, FallbackPolicy, train_intent_model
from tailorbot.models.intent import training as training_module
from tailorbot.models.intent.fallback import FallbackCalibration
from tailorbot.models.intent.hybrid import HybridIntentModel
from tailorbot.models.intent.tfidf import TfidfIntentModel
from tailorbot.models.intent.training import similarity_for_target
from tests.models.intent.support import small_dataset

MESSAGES = [
    "my new card still has not arrived",
    "what is the exchange rate for euros",
    "purple elephants dance on the moon tonight",
    "I want to close my account",
]


@pytest.fixture(scope="module")
def indexed() -> HybridIntentModel:
    data = small_dataset()
    return (
        HybridIntentModel().fit(data.texts, data.labels).index_similarity(data.texts, data.labels)
    )


def test_a_served_message_reads_the_same_similarity_as_the_batch_path(
    indexed: HybridIntentModel,
) -> None:
    batch = indexed.similarity(MESSAGES)
    assert batch.shape == (4,) and np.all(batch <= 1.0 + 1e-5)
    assert batch[0] > batch[2]  # a card question is nearer the training messages than nonsense
    for text, value in zip(MESSAGES, batch.tolist(), strict=True):
        for floor, fires in ((value - 1e-4, False), (value + 1e-4, True)):
            indexed.fallback = FallbackPolicy(min_similarity=floor)
            served = indexed.predict_one(text)
            batched = indexed.fallback_fires([text], indexed.predict_proba([text]))[0]
            if served.name != OUT_OF_SCOPE:
                assert served.fallback.triggered == fires == bool(batched), (text, floor)
                assert served.fallback.reason == ("unfamiliar" if fires else None)
    indexed.fallback = FallbackPolicy()


def test_the_index_holds_distinct_in_scope_messages_and_survives_pickling(
    indexed: HybridIntentModel,
) -> None:
    data = small_dataset()
    in_scope = {t for t, y in zip(data.texts, data.labels, strict=True) if y != OUT_OF_SCOPE}
    assert indexed._known is not None and len(indexed._known) == len(in_scope)
    copy = pickle.loads(pickle.dumps(indexed))
    assert np.array_equal(copy.similarity(MESSAGES), indexed.similarity(MESSAGES))
    # without a floor, the served path does not look at the index
    assert copy.fallback.min_similarity is None and copy.fallback_similarity(MESSAGES) is None


def test_similarity_is_considered_only_for_a_recall_target_and_a_model_with_embeddings() -> None:
    data = small_dataset()
    hybrid = HybridIntentModel().fit(data.texts, data.labels)
    assert similarity_for_target(hybrid, data.texts, data.labels, MESSAGES, None) is None
    values = similarity_for_target(hybrid, data.texts, data.labels, MESSAGES, 0.9)
    assert values is not None and values.shape == (4,)
    tfidf = TfidfIntentModel().fit(data.texts, data.labels)
    assert similarity_for_target(tfidf, data.texts, data.labels, MESSAGES, 0.9) is None


def test_a_chosen_floor_ships_with_the_index_of_every_training_row(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """When calibration picks a floor, the refit model carries the index of all rows (and
    serves the rule); when it does not, the model carries no index."""
    calibrate = training_module.calibrate_fallback
    floors: list[Any] = []

    def with_floor(*args: Any, **kwargs: Any) -> FallbackCalibration:
        found = calibrate(*args, **kwargs)
        floors.append(kwargs["similarity"])
        return replace(found, policy=replace(found.policy, min_similarity=0.75))

    monkeypatch.setattr(training_module, "calibrate_fallback", with_floor)
    trained = train_intent_model(small_dataset(), seed=1, target_oos_recall=0.9)
    model = trained.model
    assert floors[0] is not None  # the validation rows' similarities were computed
    assert model.fallback.min_similarity == 0.75 and model._known is not None
    assert trained.metadata["thresholds"]["min_similarity"] == 0.75
    values = model.fallback_similarity(MESSAGES)
    assert values is not None
    reasons = [model.predict_one(text).fallback.reason for text in MESSAGES]
    assert reasons == [None, "unfamiliar", "out_of_scope", None], values
    monkeypatch.undo()
    plain = train_intent_model(small_dataset(), seed=1, refit=False)
    assert plain.model.fallback.min_similarity is None and plain.model._known is None
