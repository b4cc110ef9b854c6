"""The off-policy estimator interface (Open Bandit Pipeline style) and what they share.

An estimator takes logged bandit feedback — for each decision the ``reward`` observed, the
``action`` taken (an index into the action set) and its logging propensity ``pscore`` — and
the target policy's ``action_dist`` (``n x K``: the probability the target policy gives each
action in each logged context), and estimates the target policy's value: its mean reward had
it made the decisions. Every estimate comes with a 95 % interval and the effective sample
size of its importance weights. ``clusters`` (a user code per decision) makes the interval
cluster-robust: decisions of one user are correlated.

Two cases get no number where none can be computed, and ``note`` says why:

* *no logged support*: the target policy gives probability 0 to every logged action (all
  weights 0, ESS 0): the log says nothing about it, so there is no value and no interval;
* *fewer than two clusters* (users; decisions when unclustered): the value stands but there
  is no interval, since one cluster's variance cannot be estimated (as ``ratio_mean`` of the
  A/B statistics).

>>> import numpy as np
>>> one_user = mean_with_interval(np.array([1.0, 0.0]), np.ones(2), np.array([7, 7]))
>>> one_user.value, one_user.ci95, one_user.note
(0.5, None, 'no interval: 1 user; an interval needs at least 2')
>>> no_support(3).value, no_support(3).note
(None, 'no logged support: the policy never takes an action the log took')
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

    value: float | None  # None: no logged support (``note`` says so)
    ci95: tuple[float, float] | None  # None: no interval can be computed (``note`` says why)
    se: float | None
    n: int  # logged decisions used
    ess: float  # effective sample size of the importance weights, (sum w)^2 / sum w^2
    note: str = ""  # why there is no value or no interval

    @property
    def supported(self) -> bool:
        return self.value is not None


class OffPolicyEstimator(ABC):
    """Estimates a target policy's value from logged decisions.

    ``clip`` caps the importance weights ``pi(a|x) / pscore`` (``None``: no cap); a cap trades
    a bias towards the logged rewards for a smaller variance.
    """

    name: str
    needs_rewards = False  # True: needs ``estimated_rewards`` (a cross-fitted reward model)

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


def no_value(n: int, why: str) -> PolicyValue:
    """An estimate with no value and no interval over ``n`` decisions, ``why`` as its note."""
    return PolicyValue(None, None, None, n, 0.0, why)


def no_support(n: int) -> PolicyValue:
    """The estimate of a policy the log has no evidence on: no value, no interval, ESS 0."""
    return no_value(n, NO_SUPPORT)


def has_support(weights: np.ndarray) -> bool:
    """Some logged decision has a positive weight: the target takes a logged action."""
    return bool(float(weights.sum()) > 0)


NO_SUPPORT = "no logged support: the policy never takes an action the log took"


def mean_with_interval(
    terms: np.ndarray, weights: np.ndarray, clusters: np.ndarray | None, centre: float | None = None
) -> PolicyValue:
    """A value from per-decision ``terms`` (its influence contributions, centred at ``centre``
    when given: the plain mean otherwise) with a (cluster-robust) normal 95 % interval; no
    interval below two clusters (users, or decisions when ``clusters`` is None)."""
    n = len(terms)
    if n == 0:
        raise ValueError("no logged decisions to estimate from")
    value = float(terms.mean()) if centre is None else centre
    residual = terms - (value if centre is None else 0.0)
    if clusters is None:
        squares, count, unit = float((residual**2).sum()), n, "decision"
    else:
        _, codes = np.unique(clusters, return_inverse=True)
        per_cluster = np.bincount(codes, weights=residual)
        squares, count, unit = float((per_cluster**2).sum()), len(per_cluster), "user"
    ess = effective_sample_size(weights)
    if count < 2:
        note = f"no interval: {count} {unit}; an interval needs at least 2"
        return PolicyValue(value, None, None, n, ess, note)
    se = math.sqrt(count / (count - 1) * squares / n**2)
    return PolicyValue(value, (value - Z95 * se, value + Z95 * se), se, n, ess)
