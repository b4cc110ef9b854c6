from __future__ import annotations

import doctest

import numpy as np
import pytest

from tailorbot.models.bandit import FeedbackReward, feedback_reward, rating_score, reward


def test_docstring_example_runs():
    assert doctest.testmod(reward).failed == 0


@pytest.mark.parametrize(("rating", "score"), [(1, 0.0), (2, 0.25), (3, 0.5), (5, 1.0)])
def test_rating_maps_linearly_onto_unit_interval(rating, score):
    assert rating_score(rating) == score
    assert rating_score(np.int64(rating)) == score


@pytest.mark.parametrize("rating", [0, 6, 3.5, True, "5"])
def test_bad_rating_is_rejected(rating):
    with pytest.raises(ValueError, match="rating must be an integer from 1 to 5"):
        feedback_reward(rating=rating)


def test_default_weights_combine_present_signals():
    assert feedback_reward(resolved=True) == 1.0
    assert feedback_reward(resolved=False) == 0.0
    assert feedback_reward(helpful=True) == 1.0
    assert feedback_reward(rating=3) == 0.5
    assert feedback_reward(resolved=True, rating=5, helpful=True) == pytest.approx(1.0)
    assert feedback_reward(resolved=False, rating=1, helpful=False) == 0.0
    assert feedback_reward(resolved=True, rating=1, helpful=False) == pytest.approx(0.5)
    assert feedback_reward(resolved=False, rating=5) == pytest.approx(0.4 / 0.9)
    assert feedback_reward() is None


def test_custom_weights():
    only_rating = FeedbackReward(resolution=0.0, rating=1.0, helpful=0.0)
    assert only_rating.reward(resolved=True, rating=2) == 0.25
    assert only_rating.reward(resolved=True) is None


@pytest.mark.parametrize(
    "weights",
    [{"resolution": -1.0}, {"rating": float("nan")}, {"resolution": 0, "rating": 0, "helpful": 0}],
)
def test_bad_weights_are_rejected(weights):
    with pytest.raises(ValueError, match="weight"):
        FeedbackReward(**weights)
