from __future__ import annotations

import pytest

from tailorbot.models.intent import (
    METRIC_NAMES,
    OUT_OF_SCOPE,
    FallbackPolicy,
    TfidfIntentModel,
    evaluate_intent_model,
    metrics_from_predictions,
)

OOS = OUT_OF_SCOPE


def test_metrics_by_hand() -> None:
    gold = ["a", "a", "b", "b", OOS, OOS]
    predicted = ["a", "b", "b", "b", OOS, "a"]
    fired = [False, False, True, False, True, False]
    m = metrics_from_predictions(gold, predicted, fired)
    assert m.accuracy == pytest.approx(4 / 6)
    # per class F1: a: p=1/2 r=1/2 -> .5; b: p=2/3 r=1 -> .8; oos: p=1 r=1/2 -> 2/3
    assert m.macro_f1 == pytest.approx((0.5 + 0.8 + 2 / 3) / 3)
    assert m.in_scope_accuracy == pytest.approx(2 / 4)  # a ok, b ok but the fallback fired once
    assert m.oos_recall == pytest.approx(1 / 2)
    assert m.oos_precision == pytest.approx(1 / 2)
    assert m.fallback_rate == pytest.approx(2 / 6)
    assert (m.n, m.n_out_of_scope) == (6, 2)


def test_without_out_of_scope_rows_the_oos_metrics_are_none() -> None:
    m = metrics_from_predictions(["a", "b"], ["a", "a"], [False, True])
    assert m.accuracy == 0.5
    assert (m.in_scope_accuracy, m.oos_recall, m.oos_precision) == (None, None, None)
    assert list(m.to_dict()) == list(METRIC_NAMES)


def test_precision_is_none_when_the_fallback_never_fires() -> None:
    m = metrics_from_predictions(["a", OOS], ["a", "a"], [False, False])
    assert m.oos_recall == 0.0
    assert m.oos_precision is None


def test_bad_input() -> None:
    with pytest.raises(ValueError, match="same length"):
        metrics_from_predictions(["a"], ["a", "b"], [False])
    with pytest.raises(ValueError, match="no rows"):
        metrics_from_predictions([], [], [])


def test_evaluate_model_uses_its_fallback() -> None:
    texts = ["where is my card", "card not arrived", "tell me a joke", "weather today"]
    labels = ["card_arrival", "card_arrival", OOS, OOS]
    model = TfidfIntentModel().fit(texts, labels)
    assert evaluate_intent_model(model, texts, labels).oos_recall == 1.0
    model.fallback = FallbackPolicy(threshold=1.0)
    metrics = evaluate_intent_model(model, texts, labels)
    assert metrics.in_scope_accuracy == 0.0
    assert metrics.accuracy == 1.0  # the top intent is still right
