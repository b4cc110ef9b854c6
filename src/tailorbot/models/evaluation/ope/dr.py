"""Doubly robust estimation."""

from __future__ import annotations

import numpy as np

from tailorbot.models.evaluation.ope.base import (
    OffPolicyEstimator,
    PolicyValue,
    has_support,
    mean_with_interval,
    no_support,
)


class DoublyRobust(OffPolicyEstimator):
    """``mean(sum_a pi(a|x) q(x, a) + w * (reward - q(x, a_logged)))``.

    ``q`` is a reward model's prediction (``estimated_rewards``, ``n x K``). The estimate is
    unbiased if either the propensities or the reward model are right, and the model's
    predictions absorb most of the reward's variance, so only the residuals are weighted.
    Fit the reward model by cross-fitting (each decision predicted by a model that never saw
    it; :func:`~tailorbot.models.evaluation.ope.evaluate.cross_fitted_rewards`), or its
    errors leak into the estimate. A policy that never takes a logged action has no logged
    support: the reward model's extrapolation alone is no evidence, so there is no value.

    >>> import numpy as np
    >>> dr = DoublyRobust()
    >>> reward, action = np.array([1.0, 0.0, 1.0, 0.0]), np.array([0, 1, 0, 1])
    >>> pscore = np.full(4, 0.5)
    >>> always_first = np.array([[1.0, 0.0]] * 4)
    >>> model = np.array([[0.9, 0.1]] * 4)
    >>> round(dr.estimate_policy_value(reward, action, pscore, always_first, model).value, 3)
    1.0
    """

    name = "dr"
    needs_rewards = True

    def estimate_policy_value(
        self,
        reward: np.ndarray,
        action: np.ndarray,
        pscore: np.ndarray,
        action_dist: np.ndarray,
        estimated_rewards: np.ndarray | None = None,
        clusters: np.ndarray | None = None,
    ) -> PolicyValue:
        if estimated_rewards is None or estimated_rewards.shape != action_dist.shape:
            raise ValueError("doubly robust needs estimated_rewards shaped like action_dist")
        weights = self._weights(action, pscore, action_dist)
        if not has_support(weights):
            return no_support(len(action))  # the reward model's guess alone: no evidence
        rows = np.arange(len(action))
        direct = (action_dist * estimated_rewards).sum(axis=1)
        residual = reward - estimated_rewards[rows, action]
        return mean_with_interval(direct + weights * residual, weights, clusters)
