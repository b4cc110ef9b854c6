"""Inverse propensity scoring (Horvitz-Thompson)."""

from __future__ import annotations

import numpy as np

from tailorbot.models.evaluation.ope.base import (
    OffPolicyEstimator,
    PolicyValue,
    has_support,
    mean_with_interval,
    no_support,
)


class InverseProbabilityWeighting(OffPolicyEstimator):
    """``mean(w * reward)`` with ``w = pi(a|x) / pscore``: unbiased when every action the
    target takes had a non-zero logging propensity, but its variance grows with the weights.

    >>> import numpy as np
    >>> ips = InverseProbabilityWeighting()
    >>> reward, action = np.array([1.0, 0.0, 1.0, 0.0]), np.array([0, 1, 0, 1])
    >>> pscore = np.full(4, 0.5)
    >>> always_first = np.array([[1.0, 0.0]] * 4)
    >>> ips.estimate_policy_value(reward, action, pscore, always_first).value
    1.0
    >>> never_logged = np.array([[0.0, 0.0, 1.0]] * 4)  # a third action the log never took
    >>> ips.estimate_policy_value(reward, action, pscore, never_logged).note
    'no logged support: the policy never takes an action the log took'
    """

    name = "ips"

    def estimate_policy_value(
        self,
        reward: np.ndarray,
        action: np.ndarray,
        pscore: np.ndarray,
        action_dist: np.ndarray,
        estimated_rewards: np.ndarray | None = None,
        clusters: np.ndarray | None = None,
    ) -> PolicyValue:
        weights = self._weights(action, pscore, action_dist)
        if not has_support(weights):
            return no_support(len(action))  # mean(0 * r) = 0 would read as measured
        return mean_with_interval(weights * reward, weights, clusters)
