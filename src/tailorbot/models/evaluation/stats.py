"""A/B statistics on clustered data: users are the randomization unit, so they are the unit of
variance (docs/experiments.md explains each estimator and how it was checked).

Each arm is given as per-cluster sums (:class:`ClusterSums`): a cluster is a user, or a bucket
of whole users (the experiment's counters keep a fixed number of user buckets); the outcome
sum ``y`` and count ``n`` of the experiment period and, optionally, the outcome sum ``x`` and
count ``m`` of the pre-period (CUPED's covariate; zero where a user has none).

* :func:`ratio_mean`: the per-contact mean ``sum(y) / sum(n)`` with its cluster-robust
  (delta-method) variance, ``G / (G - 1) * sum((y - mean * n)^2) / sum(n)^2``.
* :func:`difference`: treatment minus control with a 95 % interval from the summed variances,
  and an *always-valid* 95 % interval (:func:`always_valid_halfwidth`): a normal-mixture
  confidence sequence that holds at every look at once, so a team can look daily.
* :func:`cuped_difference`: the same difference adjusted with the pre-period covariate,
  ``(mu_t - mu_c) - theta * (nu_t - nu_c)``, ``theta`` chosen to minimise the variance.

>>> control = ClusterSums(y=np.array([8.0, 3.0, 4.0, 9.0]), n=np.array([2.0, 1.0, 1.0, 3.0]))
>>> treated = ClusterSums(y=np.array([9.0, 4.0, 5.0, 12.0]), n=np.array([2.0, 1.0, 1.0, 3.0]))
>>> lift = difference(treated, control, tau=0.25)
>>> round(lift.estimate, 3), lift.clusters
(0.857, 8)
>>> lift.ci95[0] < lift.estimate < lift.ci95[1]
True
>>> lift.always_valid_ci95[0] < lift.ci95[0]
True
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

Z95 = 1.959964
ALPHA = 0.05


@dataclass(frozen=True, slots=True)
class ClusterSums:
    """One arm's per-cluster sums (arrays of equal length; clusters without data may be 0)."""

    y: np.ndarray  # outcome sum of the experiment period
    n: np.ndarray  # outcome count of the experiment period
    x: np.ndarray | None = None  # pre-period outcome sum (CUPED's covariate)
    m: np.ndarray | None = None  # pre-period outcome count

    def present(self) -> ClusterSums:
        """Only the clusters with at least one experiment-period outcome."""
        keep = self.n > 0
        pre = (self.x[keep], self.m[keep]) if self.x is not None and self.m is not None else None
        return ClusterSums(self.y[keep], self.n[keep], *(pre or (None, None)))


@dataclass(frozen=True, slots=True)
class Difference:
    """Treatment minus control (``None`` fields when there is too little data)."""

    estimate: float | None
    se: float | None
    ci95: tuple[float, float] | None
    always_valid_ci95: tuple[float, float] | None
    clusters: int
    n: int


def ratio_mean(arm: ClusterSums) -> tuple[float, float] | None:
    """``(mean, variance)`` of the per-observation mean; ``None`` below two clusters."""
    arm = arm.present()
    clusters, total = len(arm.n), float(arm.n.sum())
    if clusters < 2:
        return None
    mean = float(arm.y.sum()) / total
    residual = arm.y - mean * arm.n
    variance = clusters / (clusters - 1) * float((residual**2).sum()) / total**2
    return mean, variance


def always_valid_halfwidth(variance: float, tau: float, alpha: float = ALPHA) -> float:
    """Half-width of the normal-mixture confidence sequence (mSPRT, Johari et al. 2017).

    For an asymptotically normal estimate with variance ``V`` and a normal mixing
    distribution of the effect with standard deviation ``tau``, the interval
    ``estimate +- sqrt(V (V + tau^2) / tau^2 * log((V + tau^2) / (alpha^2 V)))`` covers the
    true effect at every sample size simultaneously with probability ``1 - alpha``. ``tau``
    only decides when the sequence is tightest (around ``V ~ tau^2``), not its validity.
    """
    if variance <= 0:
        return 0.0
    t2 = tau * tau
    return math.sqrt(
        variance * (variance + t2) / t2 * math.log((variance + t2) / (alpha**2 * variance))
    )


def difference(treated: ClusterSums, control: ClusterSums, tau: float) -> Difference:
    """Treatment minus control per-observation means, clustered intervals (plain and always
    valid, ``tau`` the mixing scale of :func:`always_valid_halfwidth`)."""
    a, b = ratio_mean(treated), ratio_mean(control)
    clusters = int((treated.n > 0).sum() + (control.n > 0).sum())
    n = int(treated.n.sum() + control.n.sum())
    if a is None or b is None:
        return Difference(None, None, None, None, clusters, n)
    estimate, variance = a[0] - b[0], a[1] + b[1]
    return _difference(estimate, variance, tau, clusters, n)


def cuped_difference(treated: ClusterSums, control: ClusterSums, tau: float) -> Difference | None:
    """The difference adjusted with the pre-period covariate (CUPED, Deng et al. 2013, in its
    ratio-metric form); ``None`` when no cluster of either arm has pre-period data.

    Per arm, the mean ``mu = sum(y) / sum(n)`` and the covariate mean ``nu = sum(x) / sum(m)``
    have linearised cluster contributions ``psi = (y - mu n) / sum(n)`` and
    ``phi = (x - nu m) / sum(m)``. Since randomization makes ``nu_t - nu_c`` mean zero, the
    estimate ``(mu_t - mu_c) - theta (nu_t - nu_c)`` stays unbiased for any ``theta``; the
    pooled ``theta = sum(psi phi) / sum(phi^2)`` minimises its variance
    ``sum_t (psi - theta phi)^2 + sum_c (psi - theta phi)^2`` (each with ``G / (G - 1)``).
    Clusters without pre-period data have ``phi = 0``: they are simply not adjusted.
    """
    parts = [_linearised(arm.present()) for arm in (treated, control)]
    if any(p is None for p in parts):
        return None
    (mu_t, nu_t, psi_t, phi_t), (mu_c, nu_c, psi_c, phi_c) = parts  # type: ignore[misc]
    phi_sq = float((phi_t**2).sum() + (phi_c**2).sum())
    if phi_sq <= 0:
        return None
    theta = float((psi_t * phi_t).sum() + (psi_c * phi_c).sum()) / phi_sq
    variance = _cluster_var(psi_t - theta * phi_t) + _cluster_var(psi_c - theta * phi_c)
    estimate = (mu_t - mu_c) - theta * (nu_t - nu_c)
    clusters = len(psi_t) + len(psi_c)
    n = int(treated.n.sum() + control.n.sum())
    return _difference(estimate, variance, tau, clusters, n)


def _linearised(arm: ClusterSums) -> tuple[float, float, np.ndarray, np.ndarray] | None:
    if len(arm.n) < 2 or arm.x is None or arm.m is None or arm.m.sum() <= 0:
        return None
    total, pre_total = float(arm.n.sum()), float(arm.m.sum())
    mu, nu = float(arm.y.sum()) / total, float(arm.x.sum()) / pre_total
    return mu, nu, (arm.y - mu * arm.n) / total, (arm.x - nu * arm.m) / pre_total


def _cluster_var(contributions: np.ndarray) -> float:
    g = len(contributions)
    return g / (g - 1) * float((contributions**2).sum())


def _difference(estimate: float, variance: float, tau: float, clusters: int, n: int) -> Difference:
    if variance <= 0:  # no variation seen: a plug-in variance of 0 would claim certainty
        return Difference(estimate, None, None, None, clusters, n)
    se = math.sqrt(variance)
    half = Z95 * se
    always = always_valid_halfwidth(variance, tau)
    return Difference(
        estimate=estimate,
        se=se,
        ci95=(estimate - half, estimate + half),
        always_valid_ci95=(estimate - always, estimate + always),
        clusters=clusters,
        n=n,
    )
