"""The off-policy estimator interface (Open Bandit Pipeline style) and what they share.

An estimator takes logged bandit feedback — for each decision the ``reward`` observed, the
``action`` taken (an index into the action set) and its logging propensity ``pscore`` — and
the target policy's ``action_dist`` (``n x K``: the probability the target policy gives each
action in each logged context), and estimates the target policy's value: its mean reward had
it made the decisions. Every estimate comes with a 95 % interval and the effective sample
size of its importance weights. ``clusters`` (a user code per decision) makes the interval
cluster-robust: decisions of one user are correlated.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np

Z95 = 1.959964


@dataclass(frozen=True, slots=True)
class PolicyValue:
    """An estimate of a policy's value."""

    value: float
    ci95: tuple[float, float]
    se: float
    n: int  # logged decisions used
    ess: float  # effective sample size of the importance weights, (sum w)^2 / sum w^2


class OffPolicyEstimator(ABC):
    """Estimates a target policy's value from logged decisions.

    ``clip`` caps the importance weights ``pi(a|x) / pscore`` (``None``: no cap); a cap trades
    a bias towards the logged rewards for a smaller variance.
    """

    name: str

    def __init__(self, clip: float | None = None) -> None:
        self.clip = clip

    @abstractmethod
    def estimate_policy_value(
        self,
        reward: np.ndarray,
        action: np.ndarray,
        pscore: np.ndarray,
        action_dist: np.ndarray,
        estimated_rewards: np.ndarray | None = None,
        clusters: np.ndarray | None = None,
    ) -> PolicyValue:
        """The target policy's estimated value; ``estimated_rewards`` (``n x K``, a reward
        model's predictions) is used by the estimators that need one."""

    def _weights(
        self, action: np.ndarray, pscore: np.ndarray, action_dist: np.ndarray
    ) -> np.ndarray:
        check_logged(action, pscore, action_dist)
        target = action_dist[np.arange(len(action)), action]
        weights = target / pscore
        return np.minimum(weights, self.clip) if self.clip is not None else weights

    def __repr__(self) -> str:
        return f"{type(self).__name__}(clip={self.clip!r})"


def check_logged(action: np.ndarray, pscore: np.ndarray, action_dist: np.ndarray) -> None:
    """Shapes agree and every logged propensity is a probability above zero."""
    n = len(action)
    if pscore.shape != (n,) or action_dist.ndim != 2 or action_dist.shape[0] != n:
        raise ValueError("action, pscore and action_dist must describe the same decisions")
    if n and ((pscore <= 0).any() or (pscore > 1).any()):
        raise ValueError("logged propensities must be within (0, 1]: a zero one cannot be weighted")


def effective_sample_size(weights: np.ndarray) -> float:
    """Kish's effective sample size: how many on-policy decisions the weights are worth."""
    square = float((weights**2).sum())
    return float(weights.sum()) ** 2 / square if square > 0 else 0.0


def mean_with_interval(
    terms: np.ndarray, weights: np.ndarray, clusters: np.ndarray | None, centre: float | None = None
) -> PolicyValue:
    """A value from per-decision ``terms`` (its influence contributions, centred at ``centre``
    when given: the plain mean otherwise) with a (cluster-robust) normal 95 % interval."""
    n = len(terms)
    if n == 0:
        raise ValueError("no logged decisions to estimate from")
    value = float(terms.mean()) if centre is None else centre
    residual = terms - (value if centre is None else 0.0)
    if clusters is None:
        squares = float((residual**2).sum())
        count = n
    else:
        _, codes = np.unique(clusters, return_inverse=True)
        per_cluster = np.bincount(codes, weights=residual)
        squares, count = float((per_cluster**2).sum()), len(per_cluster)
    variance = count / max(count - 1, 1) * squares / n**2
    se = math.sqrt(variance)
    return PolicyValue(
        value=value,
        ci95=(value - Z95 * se, value + Z95 * se),
        se=se,
        n=n,
        ess=effective_sample_size(weights),
    )
