"""Disjoint LinUCB (Li et al., 2010) with an epsilon-greedy floor."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from tailorbot.compiled import native
from tailorbot.models.bandit.base import (
    ArmFeatures,
    Choice,
    ContextualBandit,
    check_arms,
    choice_builder,
)

# Scores this close to the best one count as tied (floating-point noise, not preference).
TIE_TOLERANCE = 1e-9


class LinUCB(ContextualBandit):
    """Disjoint LinUCB: one ridge regression per arm, ranked by an upper confidence bound.

    Each arm's score is ``x . theta + alpha * sqrt(x A^-1 x)`` with
    ``A = ridge * I + sum x x^T`` and ``theta = A^-1 sum reward * x``. The policy plays the
    best-scoring arm (ties, within ``1e-9`` relative, split uniformly) with probability
    ``1 - epsilon`` and a uniformly random arm with probability ``epsilon``, so the exact
    selection probability of an arm among ``K`` offered ones is::

        epsilon / K + (1 - epsilon) * [arm is among the best] / (number of best arms)

    The epsilon floor keeps every arm's propensity at least ``epsilon / K``: logged decisions
    stay usable for off-policy evaluation of any other policy, and an arm that looked bad
    early still gets an occasional second chance. ``Choice.scores`` holds the UCB scores.

    Parameters
    ----------
    features
        Names of the context features, in a fixed order (a bias term is added).
    alpha
        Exploration weight of the confidence width.
    ridge
        Ridge (L2) prior strength: ``A`` starts at ``ridge * I``.
    epsilon
        Probability of playing a uniformly random arm (the propensity floor).
    seed
        Seed of the model's own random generator (used when ``select`` gets no ``rng``).

    Examples
    --------
    >>> bandit = LinUCB(features=["vip"], alpha=0.5, epsilon=0.1, seed=42)
    >>> for _ in range(50):
    ...     bandit.learn_one({"vip": 1.0}, "concise", 1.0)
    ...     bandit.learn_one({"vip": 1.0}, "empathetic", 0.0)
    >>> probs, _ = bandit.probabilities({"vip": 1.0}, ["concise", "empathetic"])
    >>> {arm: round(p, 3) for arm, p in probs.items()}
    {'concise': 0.95, 'empathetic': 0.05}
    >>> choice = bandit.select({"vip": 1.0}, ["concise", "empathetic"])
    >>> choice.arm, round(choice.propensity, 3)
    ('concise', 0.95)
    """

    def __init__(
        self,
        features: Sequence[str],
        alpha: float = 1.0,
        ridge: float = 1.0,
        epsilon: float = 0.05,
        seed: int | None = None,
    ) -> None:
        self.features = features
        self.alpha = alpha
        self.ridge = ridge
        self.epsilon = epsilon
        self.seed = seed
        if not alpha >= 0:
            raise ValueError(f"alpha must be >= 0, got {alpha!r}")
        self._init_state()

    def select(
        self,
        context: Mapping[str, float],
        arms: Sequence[str],
        rng: np.random.Generator | None = None,
        arm_features: ArmFeatures | None = None,
    ) -> Choice:
        """:meth:`ContextualBandit.select`, in one compiled call where the extension is built
        and every offered arm was solved before (the same checks, doubles and draw; the
        Python path serves anything else, and solves the arms for the next choice)."""
        rng = rng if rng is not None else self._rng
        loops = native()
        if loops is not None and type(context) is dict and type(arms) is list and self._plain():
            picked = loops.ucb_select(
                context, self._index, arms, arm_features or None, self._posterior,
                self.alpha, self.epsilon, TIE_TOLERANCE, rng.random,
            )  # fmt: skip
            if picked is not None:
                return choice_builder()(*picked)
        return super().select(context, arms, rng, arm_features)

    def probabilities(
        self,
        context: Mapping[str, float],
        arms: Sequence[str],
        rng: np.random.Generator | None = None,
        arm_features: ArmFeatures | None = None,
    ) -> tuple[dict[str, float], dict[str, float]]:
        """Exact selection probabilities (``rng`` is unused: LinUCB scores are deterministic)."""
        arms = check_arms(arms)
        means, widths = self._posterior_moments(context, arms, arm_features)
        alpha = self.alpha
        ucb = [m + alpha * w for m, w in zip(means, widths, strict=True)]
        top = max(ucb)
        floor = top - TIE_TOLERANCE * (1.0 + abs(top))
        n_best = 0
        for u in ucb:
            if u >= floor:
                n_best += 1
        # Two values only: a best arm's (1 / n_best) and any other's (0.0), each mixed with
        # the floor. One loop fills both dicts (this runs every decision: a pass a list, and
        # dicts built from zips, cost more).
        best, other = self._mix_epsilon([1 / n_best, 0.0], offered=len(arms))
        probs: dict[str, float] = {}
        scores: dict[str, float] = {}
        for arm, u in zip(arms, ucb, strict=True):
            probs[arm] = best if u >= floor else other
            scores[arm] = u
        return probs, scores
