"""The searched hyperparameters: class weights and the recency half-life of logged rows, beside
C, the n-gram ranges, min_df and the fallback's threshold and margin."""

from __future__ import annotations

import optuna
import pytest

from tailorbot.models.intent.tfidf import TfidfIntentModel
from tailorbot.models.pipeline.crossval import IntentParams
from tailorbot.models.pipeline.dataset import build_dataset
from tailorbot.models.pipeline.search import SearchSpace
from tailorbot.models.pipeline.trainer import train_intent
from tests.models.pipeline.support import support_log

OTHER = ["top up please", "add money", "top up failed", "how to add funds"] * 3


def test_sample_weights_decide_between_conflicting_labels() -> None:
    """The same text labelled both ways: the heavier rows win (the weights reach the SVM)."""
    texts = ["where is my card"] * 6 + OTHER
    labels = ["old_label"] * 3 + ["new_label"] * 3 + ["top_up"] * len(OTHER)
    for heavy, weights in (
        ("new_label", [0.05] * 3 + [1.0] * 3),
        ("old_label", [1.0] * 3 + [0.05] * 3),
    ):
        model = TfidfIntentModel().fit(texts, labels, sample_weight=weights + [1.0] * len(OTHER))
        assert model.predict_one("where is my card").name == heavy


def test_recency_weights_halve_every_half_life() -> None:
    params = IntentParams(half_life_days=10.0)
    assert params.weights([0.0, 10.0, 20.0]).tolist() == [1.0, 0.5, 0.25]
    assert IntentParams().weights([0.0, 10.0]) is None  # no half-life: unweighted


def test_the_space_has_class_weights_and_a_half_life_for_rows_with_time() -> None:
    values = {"C": 0.5, "word_ngram_max": 2, "char_ngrams": "2-5", "char_min_df": 2,
              "class_weight": "balanced", "recency": "1/4", "threshold": 0.1,
              "margin": 0.0}  # fmt: skip
    params = SearchSpace("tfidf", span_days=20.0).suggest(optuna.trial.FixedTrial(values))
    assert params.class_weight == "balanced" and params.half_life_days == pytest.approx(5.0)
    assert "recency" not in SearchSpace("tfidf", span_days=0.0).defaults()  # CSV rows: no time
    assert SearchSpace("hybrid", 20.0).defaults()["C"] == IntentParams().resolved().C == 0.3


def test_a_search_on_logged_rows_reports_its_choice_and_fits_the_served_kind() -> None:
    events, profiles = support_log(users=40, contacts=6, seed=1)
    rows = build_dataset(events, profiles)
    run = train_intent(rows, k=3, n_trials=3, timeout_s=120)
    card = run.card
    assert card["model"] == "HybridIntentModel" and card["params"]["model"] == "hybrid"
    assert {"class_weight", "half_life_days"} <= set(card["params"])
    assert card["search"]["trials"] == 3 and card["search"]["default_answer_score"] is not None
    assert card["reference"]["window"] == "validation split"  # the drift reference
