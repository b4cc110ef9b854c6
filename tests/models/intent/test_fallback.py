from __future__ import annotations

import numpy as np
import pytest

from tailorbot.models.intent import (
    OUT_OF_SCOPE,
    FallbackDecision,
    FallbackPolicy,
    calibrate_fallback,
)

LABELS = ("a", "b", OUT_OF_SCOPE)


def test_decide_reasons_in_order() -> None:
    policy = FallbackPolicy(threshold=0.5, margin=0.2)
    assert policy.decide([(OUT_OF_SCOPE, 0.9), ("a", 0.1)]) == FallbackDecision(
        True, "out_of_scope"
    )
    assert policy.decide([("a", 0.4), (OUT_OF_SCOPE, 0.1)]).reason == "low_confidence"
    assert policy.decide([("a", 0.55), ("b", 0.45)]).reason == "small_margin"
    assert policy.decide([("a", 0.8), ("b", 0.1)]) == FallbackDecision(False, None)
    assert policy.decide([("a", 0.8)]) == FallbackDecision(False, None)
    with pytest.raises(ValueError, match="empty"):
        policy.decide([])


def test_default_policy_fires_only_on_out_of_scope() -> None:
    policy = FallbackPolicy()
    assert not policy.decide([("a", 0.34), ("b", 0.33)]).triggered
    assert policy.decide([(OUT_OF_SCOPE, 0.34), ("b", 0.33)]).triggered


def test_fires_matches_decide_row_by_row() -> None:
    rng = np.random.default_rng(3)
    probs = rng.dirichlet(np.ones(len(LABELS)) * 0.7, size=300)
    policy = FallbackPolicy(threshold=0.45, margin=0.15)
    fired = policy.fires(probs, LABELS)
    for row, flag in zip(probs, fired, strict=True):
        order = np.argsort(-row)
        ranking = [(LABELS[i], float(row[i])) for i in order]
        assert policy.decide(ranking).triggered == bool(flag)


def test_calibration_raises_threshold_to_catch_unsure_out_of_scope_rows() -> None:
    # in-scope rows are confident and right; OOS rows look like unsure in-scope guesses
    probs = np.array([[0.9, 0.05, 0.05]] * 10 + [[0.4, 0.35, 0.25]] * 5)
    gold = ["a"] * 10 + [OUT_OF_SCOPE] * 5
    result = calibrate_fallback(probs, gold, LABELS)
    assert result.policy.fires(probs, LABELS).tolist() == [False] * 10 + [True] * 5
    assert result.in_scope_accuracy == 1.0
    assert result.oos_recall == 1.0
    assert result.objective == pytest.approx(2.0)


def test_calibration_keeps_zero_thresholds_when_nothing_is_gained() -> None:
    probs = np.array([[0.6, 0.3, 0.1]] * 6 + [[0.1, 0.1, 0.8]] * 3)
    gold = ["a"] * 6 + [OUT_OF_SCOPE] * 3
    result = calibrate_fallback(probs, gold, LABELS)
    assert (result.policy.threshold, result.policy.margin) == (0.0, 0.0)
    assert result.oos_recall == 1.0


def test_wrong_answer_cost_holds_back_unsure_wrong_answers() -> None:
    # no OOS rows: the unsure rows are the wrong ones
    probs = np.array([[0.95, 0.04, 0.01]] * 8 + [[0.3, 0.45, 0.25]] * 4)
    gold = ["a"] * 8 + ["a"] * 4
    free = calibrate_fallback(probs, gold, LABELS, wrong_answer_cost=0.0)
    priced = calibrate_fallback(probs, gold, LABELS, wrong_answer_cost=1.0)
    assert (free.policy.threshold, free.policy.margin) == (0.0, 0.0)
    assert free.oos_recall is None
    assert priced.policy.fires(probs, LABELS).tolist() == [False] * 8 + [True] * 4
    assert priced.wrong_answer_rate == 0.0
    assert priced.in_scope_accuracy == pytest.approx(8 / 12)


def test_calibration_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="shape"):
        calibrate_fallback(np.ones((2, 2)), ["a", "b"], LABELS)
    with pytest.raises(ValueError, match="empty"):
        calibrate_fallback(np.ones((0, 3)), [], LABELS)
    with pytest.raises(ValueError, match="wrong_answer_cost"):
        calibrate_fallback(np.ones((1, 3)) / 3, ["a"], LABELS, wrong_answer_cost=-1)


def _trade_off_case() -> tuple[np.ndarray, list[str]]:
    """In-scope rows: confident and right, or unsure and wrong; OOS rows: unsure 'a'."""
    probs = np.array(
        [[0.9, 0.05, 0.05]] * 6  # in scope, right
        + [[0.5, 0.45, 0.05]] * 2  # in scope, gold b: wrong, unsure
        + [[0.3, 0.2, 0.5]]  # OOS caught by the class
        + [[0.6, 0.3, 0.1]] * 2  # OOS looking like "a" at 0.6
        + [[0.92, 0.05, 0.03]]  # OOS looking like a confident "a"
    )
    gold = ["a"] * 6 + ["b"] * 2 + [OUT_OF_SCOPE] * 4
    return probs, gold


def test_target_recall_picks_the_best_accuracy_that_reaches_it() -> None:
    probs, gold = _trade_off_case()
    half = calibrate_fallback(probs, gold, LABELS, target_oos_recall=0.5, margins=(0.0,))
    assert half.oos_recall is not None and half.oos_recall >= 0.5
    assert half.in_scope_accuracy == 6 / 8  # the confident right answers are all kept
    assert half.target_oos_recall == 0.5
    strict = calibrate_fallback(probs, gold, LABELS, target_oos_recall=1.0, margins=(0.0,))
    assert strict.oos_recall == 1.0 and strict.policy.threshold > 0.92
    assert strict.in_scope_accuracy < half.in_scope_accuracy  # the price of full recall


def test_unreachable_target_takes_the_highest_recall_and_bad_targets_fail() -> None:
    probs, gold = _trade_off_case()
    grid = (0.0, 0.5, 0.7)
    best = calibrate_fallback(
        probs, gold, LABELS, target_oos_recall=1.0, thresholds=grid, margins=(0.0,)
    )
    assert best.oos_recall == 0.75 and best.policy.threshold == 0.7
    with pytest.raises(ValueError, match="target_oos_recall"):
        calibrate_fallback(probs, gold, LABELS, target_oos_recall=1.5)
    no_oos = calibrate_fallback(probs[:8], gold[:8], LABELS, target_oos_recall=0.9)
    assert no_oos.target_oos_recall is None and no_oos.oos_recall is None


def test_the_similarity_floor_fires_as_unfamiliar_after_the_out_of_scope_class() -> None:
    policy = FallbackPolicy(threshold=0.5, min_similarity=0.6)
    assert policy.decide([("a", 0.9), ("b", 0.1)], similarity=0.5) == FallbackDecision(
        True, "unfamiliar"
    )
    assert policy.decide([(OUT_OF_SCOPE, 0.9)], similarity=0.5).reason == "out_of_scope"
    assert not policy.decide([("a", 0.9), ("b", 0.1)], similarity=0.7).triggered
    assert not policy.decide([("a", 0.9), ("b", 0.1)]).triggered  # no similarity told
    assert not FallbackPolicy().decide([("a", 0.9)], similarity=-1.0).triggered
    probs = np.array([[0.9, 0.05, 0.05], [0.9, 0.05, 0.05]])
    assert policy.fires(probs, LABELS, np.array([0.5, 0.7])).tolist() == [True, False]


def test_a_similarity_floor_is_chosen_only_where_it_buys_the_target() -> None:
    """Out-of-scope rows the classifier answers confidently, but far from every training
    message: only a similarity floor catches them without refusing the in-scope rows."""
    probs = np.array([[0.9, 0.05, 0.05]] * 12)
    gold = ["a"] * 8 + [OUT_OF_SCOPE] * 4
    similarity = np.array([0.9] * 8 + [0.2] * 4)
    without = calibrate_fallback(probs, gold, LABELS, target_oos_recall=0.9)
    assert without.policy.min_similarity is None and without.in_scope_accuracy == 0.0
    found = calibrate_fallback(probs, gold, LABELS, target_oos_recall=0.9, similarity=similarity)
    assert found.policy.min_similarity is not None and 0.2 < found.policy.min_similarity <= 0.9
    assert (found.in_scope_accuracy, found.oos_recall) == (1.0, 1.0)
    assert found.policy.threshold == 0.0 and found.policy.margin == 0.0
    # Where the class already catches them, no floor: it would cost a product per message.
    caught = np.array([[0.9, 0.05, 0.05]] * 8 + [[0.05, 0.05, 0.9]] * 4)
    plain = calibrate_fallback(caught, gold, LABELS, target_oos_recall=0.9, similarity=similarity)
    assert plain.policy.min_similarity is None
    with pytest.raises(ValueError, match="similarity"):
        calibrate_fallback(probs, gold, LABELS, similarity=similarity[:3])


def test_a_policy_pickled_before_the_similarity_floor_loads_without_it() -> None:
    policy = FallbackPolicy.__new__(FallbackPolicy)
    policy.__setstate__([0.3, 0.1, OUT_OF_SCOPE])  # the state pickles of old models hold
    assert policy == FallbackPolicy(0.3, 0.1)
    assert policy.min_similarity is None


def test_without_a_recall_target_no_similarity_floor_is_considered() -> None:
    probs = np.array([[0.9, 0.05, 0.05]] * 8 + [[0.6, 0.3, 0.1]] * 4)
    gold = ["a"] * 8 + ["b"] * 4  # the unsure rows are wrong: a floor would hold them back
    similarity = np.array([0.9] * 8 + [0.2] * 4)
    found = calibrate_fallback(probs, gold, LABELS, similarity=similarity, thresholds=(0.0,))
    assert found.policy.min_similarity is None
