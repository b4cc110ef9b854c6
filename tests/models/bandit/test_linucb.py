from __future__ import annotations

import doctest
import math

import numpy as np
import pytest

from tailorbot.compiled import native
from tailorbot.models.bandit import LinUCB, linucb
from tailorbot.models.bandit import base as bandit_base


def test_docstring_example_runs():
    assert doctest.testmod(linucb).failed == 0


def test_fresh_model_ties_every_arm():
    probs, scores = LinUCB(["x"], epsilon=0.3).probabilities({"x": 1.0}, ["a", "b", "c", "d"])
    assert probs == pytest.approx(dict.fromkeys("abcd", 0.25))
    assert len(set(scores.values())) == 1


def test_exact_propensities_with_a_tie_and_a_loser():
    bandit = LinUCB(["x"], alpha=0.0, epsilon=0.2)
    for _ in range(10):
        bandit.learn_one({"x": 1.0}, "a", 1.0)
        bandit.learn_one({"x": 1.0}, "b", 1.0)
        bandit.learn_one({"x": 1.0}, "c", 0.0)
    probs, scores = bandit.probabilities({"x": 1.0}, ["a", "b", "c"])
    # Floor 0.2 / 3 for everyone; the remaining 0.8 split between the tied best arms a and b.
    assert probs == pytest.approx({"a": 0.2 / 3 + 0.4, "b": 0.2 / 3 + 0.4, "c": 0.2 / 3})
    assert scores["a"] == scores["b"] > scores["c"]


def test_ucb_score_is_mean_plus_alpha_times_width():
    bandit = LinUCB(["x"], alpha=2.0, ridge=1.0)
    bandit.learn_one({"x": 1.0}, "a", 1.0)
    # A = I + [[1,1],[1,1]] for x = (1, bias 1); b = (1, 1).
    a = np.eye(2) + np.ones((2, 2))
    x = np.array([1.0, 1.0])
    expected = x @ np.linalg.solve(a, x) + 2.0 * math.sqrt(x @ np.linalg.inv(a) @ x)
    _, scores = bandit.probabilities({"x": 1.0}, ["a"])
    assert scores["a"] == pytest.approx(expected)


@pytest.mark.parametrize("compiled", [False, True])
def test_logged_propensity_matches_the_observed_frequency(monkeypatch, compiled):
    if not compiled:  # the Python path's select, as where the extension is not built
        monkeypatch.setattr(linucb, "native", lambda: None)
        monkeypatch.setattr(bandit_base, "native", lambda: None)
    elif native() is None:
        pytest.skip("the extension is not built here (tests/test_native.py requires it in CI)")
    bandit = LinUCB(["x"], alpha=0.0, epsilon=0.3, seed=11)
    for _ in range(5):
        bandit.learn_one({}, "good", 1.0)
    choices = [bandit.select({}, ["good", "bad"]) for _ in range(4000)]
    share = np.mean([c.arm == "bad" for c in choices])
    logged = {c.arm: c.propensity for c in choices}
    assert logged["bad"] == pytest.approx(0.15)
    assert logged["good"] == pytest.approx(0.85)
    assert abs(share - 0.15) < 0.03  # about 5 standard deviations


@pytest.mark.parametrize("compiled", [False, True])
def test_scores_and_propensities_are_the_numpy_formula(monkeypatch, compiled):
    # The policy's arithmetic runs on Python floats; it must give the very doubles of the
    # formula in numpy (logged propensities feed off-policy evaluation and replays), or, in
    # the compiled loop (sums in another order), the same scores to rounding and the very
    # same propensities.
    if not compiled:
        monkeypatch.setattr(bandit_base, "native", lambda: None)
    elif native() is None:
        pytest.skip("the extension is not built here (tests/test_native.py requires it in CI)")
    rng = np.random.default_rng(5)
    names = ["x", "y", "own_reward"]
    bandit = LinUCB(names, alpha=0.7, epsilon=0.1)
    arms = ["a", "b", "c"]
    for i in range(60):
        bandit.learn_one(dict(zip(names, rng.random(3).tolist(), strict=True)), arms[i % 3], 1.0)
    context = {"x": 0.3, "y": 0.9}
    features = {"a": {"own_reward": 0.2}, "b": {"own_reward": 0.7}}
    probs, scores = bandit.probabilities(context, arms, arm_features=features)
    ucb = []
    for arm in arms:
        x = np.array([0.3, 0.9, features.get(arm, {}).get("own_reward", 0.0), 1.0])
        a_inv = np.linalg.inv(np.eye(4) + sum_gram(bandit, arm))
        theta = a_inv @ bandit.statistics()[f"arm/{arm}"][1:5]
        ucb.append(x @ theta + 0.7 * math.sqrt(x @ a_inv @ x))
    if compiled:
        np.testing.assert_allclose(list(scores.values()), ucb, rtol=1e-12, atol=0)
    else:
        assert list(scores.values()) == ucb
    best = np.array(ucb) >= max(ucb) - 1e-9 * (1.0 + abs(max(ucb)))
    assert list(probs.values()) == (0.1 / 3 + 0.9 * (best / best.sum())).tolist()


def sum_gram(bandit: LinUCB, arm: str) -> np.ndarray:
    """The arm's Gram matrix from its packed statistics (count, b, the upper triangle)."""
    gram = np.zeros((4, 4))
    rows, cols = np.triu_indices(4)
    gram[rows, cols] = gram[cols, rows] = bandit.statistics()[f"arm/{arm}"][5:]
    return gram
