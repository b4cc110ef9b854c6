from __future__ import annotations

import doctest
import math

import numpy as np
import pytest

from tailorbot.models.bandit import LinearThompson, thompson


def test_docstring_example_runs():
    assert doctest.testmod(thompson).failed == 0


def normal_cdf(z: float) -> float:
    return 0.5 * (1.0 + math.erf(z / math.sqrt(2.0)))


def test_monte_carlo_propensity_is_close_to_the_exact_two_arm_value():
    bandit = LinearThompson(["x"], v=1.0, n_draws=4000, seed=2)
    for reward in (1.0, 0.6, 0.8):
        bandit.learn_one({"x": 1.0}, "a", reward)
    bandit.learn_one({"x": 1.0}, "b", 0.5)
    probs, means = bandit.probabilities({"x": 1.0}, ["a", "b"])
    # Two independent Gaussian scores: P(a wins) = Phi((m_a - m_b) / sqrt(s_a^2 + s_b^2)).
    moments, widths = bandit._posterior_moments({"x": 1.0}, ["a", "b"])
    exact = normal_cdf((moments[0] - moments[1]) / math.hypot(*widths))
    assert probs["a"] == pytest.approx(exact, abs=4 / math.sqrt(4000))
    assert probs["a"] + probs["b"] == pytest.approx(1.0)
    assert means == pytest.approx(dict(zip(["a", "b"], moments, strict=True)))


def test_propensities_are_multiples_of_one_draw_mixed_with_the_floor():
    bandit = LinearThompson(["x"], n_draws=50, epsilon=0.1, seed=0)
    probs, _ = bandit.probabilities({"x": 1.0}, ["a", "b", "c"])
    for p in probs.values():
        wins = (p - 0.1 / 3) / 0.9 * 50
        assert wins == pytest.approx(round(wins))


def test_clear_winner_gets_nearly_all_the_mass():
    bandit = LinearThompson(["x"], v=0.1, seed=0)
    for _ in range(100):
        bandit.learn_one({"x": 1.0}, "a", 1.0)
        bandit.learn_one({"x": 1.0}, "b", 0.0)
    probs, _ = bandit.probabilities({"x": 1.0}, ["a", "b"])
    assert probs["a"] == 1.0 and probs["b"] == 0.0


@pytest.mark.parametrize(
    ("kwargs", "message"), [({"v": 0.0}, "v must"), ({"n_draws": 0}, "n_draws")]
)
def test_bad_configuration_is_rejected(kwargs, message):
    with pytest.raises(ValueError, match=message):
        LinearThompson(["x"], **kwargs)


def test_generator_argument_is_used_for_the_draws():
    bandit = LinearThompson(["x"], seed=0)
    first = bandit.probabilities({"x": 1.0}, ["a", "b"], rng=np.random.default_rng(1))
    again = bandit.probabilities({"x": 1.0}, ["a", "b"], rng=np.random.default_rng(1))
    assert first == again
