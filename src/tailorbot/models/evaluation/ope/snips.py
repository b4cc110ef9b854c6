"""Self-normalized inverse propensity scoring."""

from __future__ import annotations

import numpy as np

from tailorbot.models.evaluation.ope.base import (
    OffPolicyEstimator,
    PolicyValue,
    has_support,
    mean_with_interval,
    no_support,
)


class SelfNormalizedIPS(OffPolicyEstimator):
    """``sum(w * reward) / sum(w)``: IPS divided by the mean weight. Slightly biased in small
    samples but never outside the range of the rewards, and much less variable when the
    weights are large. Its interval uses the delta method (influence ``w (r - v) / mean(w)``).

    >>> import numpy as np
    >>> snips = SelfNormalizedIPS()
    >>> reward, action = np.array([1.0, 0.0, 1.0, 0.0]), np.array([0, 1, 0, 1])
    >>> pscore = np.array([0.8, 0.5, 0.2, 0.5])
    >>> always_first = np.array([[1.0, 0.0]] * 4)
    >>> snips.estimate_policy_value(reward, action, pscore, always_first).value
    1.0
    """

    name = "snips"

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
            return no_support(len(action))
        mean_weight = float(weights.mean())
        value = float((weights * reward).sum() / weights.sum())
        influence = weights * (reward - value) / mean_weight
        return mean_with_interval(influence, weights, clusters, centre=value)
