"""Linear Thompson sampling (Agrawal & Goyal, 2013) with Monte-Carlo propensities."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from tailorbot.models.bandit.base import ArmFeatures, ContextualBandit, check_arms


class LinearThompson(ContextualBandit):
    """Linear Thompson sampling with a Gaussian posterior per arm.

    Arm ``a``'s weights have the posterior ``N(theta_a, v^2 A_a^-1)`` with
    ``A_a = ridge * I + sum x x^T`` and ``theta_a = A_a^-1 sum reward * x``; Thompson sampling
    draws weights from each posterior and plays the arm with the highest ``x . weights``.
    Since the arms are independent, only the scalar ``x . weights`` matters, which is
    ``N(x . theta_a, v^2 x A_a^-1 x)``.

    **Propensity.** The probability that an arm wins a draw has no closed form, so it is
    estimated by Monte Carlo: ``n_draws`` joint draws of all arms' scores (default 1000), and
    each arm's share of wins. The arm is then drawn *from that estimate* (mixed with the
    ``epsilon`` floor), which in expectation is exactly Thompson sampling, and makes the logged
    propensity the exact probability the arm had given the draws; its Monte-Carlo error
    against the ideal Thompson probability is at most about ``1 / sqrt(n_draws)``.
    An arm that won no draw has propensity ``epsilon / K`` (zero with the default
    ``epsilon=0``): set ``epsilon`` when the logs feed off-policy evaluation.
    ``Choice.scores`` holds the posterior means ``x . theta_a``.

    Parameters
    ----------
    features
        Names of the context features, in a fixed order (a bias term is added).
    v
        Scale of the posterior: larger explores more.
    ridge
        Ridge (L2) prior strength: ``A`` starts at ``ridge * I``.
    epsilon
        Probability of playing a uniformly random arm (the propensity floor).
    n_draws
        Monte-Carlo draws per decision.
    seed
        Seed of the model's own random generator (used when ``select`` gets no ``rng``).

    Examples
    --------
    >>> bandit = LinearThompson(features=["vip"], v=0.2, seed=7)
    >>> for _ in range(50):
    ...     bandit.learn_one({"vip": 1.0}, "concise", 1.0)
    ...     bandit.learn_one({"vip": 1.0}, "empathetic", 0.0)
    >>> choice = bandit.select({"vip": 1.0}, ["concise", "empathetic"])
    >>> choice.arm, choice.propensity
    ('concise', 1.0)
    >>> round(choice.scores["concise"], 2), round(choice.scores["empathetic"], 2)
    (0.99, 0.0)
    """

    def __init__(
        self,
        features: Sequence[str],
        v: float = 0.5,
        ridge: float = 1.0,
        epsilon: float = 0.0,
        n_draws: int = 1000,
        seed: int | None = None,
    ) -> None:
        self.features = features
        self.v = v
        self.ridge = ridge
        self.epsilon = epsilon
        self.n_draws = n_draws
        self.seed = seed
        if not v > 0:
            raise ValueError(f"v must be > 0, got {v!r}")
        if not (isinstance(n_draws, int) and n_draws >= 1):
            raise ValueError(f"n_draws must be a positive integer, got {n_draws!r}")
        self._init_state()

    def probabilities(
        self,
        context: Mapping[str, float],
        arms: Sequence[str],
        rng: np.random.Generator | None = None,
        arm_features: ArmFeatures | None = None,
    ) -> tuple[dict[str, float], dict[str, float]]:
        """Monte-Carlo estimated selection probabilities and the posterior means."""
        arms = check_arms(arms)
        rng = rng if rng is not None else self._rng
        means, widths = self._posterior_moments(context, arms, arm_features)
        scale = self.v * np.array(widths)
        draws = rng.normal(np.array(means), scale, size=(self.n_draws, len(arms)))
        wins = np.bincount(draws.argmax(axis=1), minlength=len(arms))
        probs = self._mix_epsilon((wins / self.n_draws).tolist())
        return dict(zip(arms, probs, strict=True)), dict(zip(arms, means, strict=True))
