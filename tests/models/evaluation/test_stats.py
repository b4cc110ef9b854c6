"""The A/B statistics against simulations with known truth: coverage of each interval.

Users have a persistent effect and a heavy-tailed number of contacts (like the demo's
customers: a tenth of them make about half the contacts), so contacts of one user are
correlated and an interval that treats contacts as independent is too narrow.
"""

from __future__ import annotations

import doctest

import numpy as np
import pytest

from tailorbot.models.evaluation import stats
from tailorbot.models.evaluation.stats import (
    ClusterSums,
    always_valid_halfwidth,
    cuped_difference,
    difference,
    ratio_mean,
)

TRUE_LIFT = 0.2
TAU = 0.25


def users(rng: np.random.Generator, count: int, lift: float, pre_share: float = 0.0) -> ClusterSums:
    """Per-user sums: user effect sd 1, contact noise sd 1, 10 % of users contact 8x as often."""
    effect = rng.normal(0.0, 1.0, count)
    rate = np.where(rng.random(count) < 0.1, 16.0, 2.0)
    n = rng.poisson(rate) + 1.0
    y = n * (3.0 + effect + lift) + rng.normal(0.0, 1.0, count) * np.sqrt(n)
    m = np.where(rng.random(count) < pre_share, rng.poisson(rate) + 1.0, 0.0)
    x = m * (3.0 + effect) + rng.normal(0.0, 1.0, count) * np.sqrt(m)
    return ClusterSums(y=y, n=n, x=x, m=m)


def naive_interval(treated: ClusterSums, control: ClusterSums) -> tuple[float, float]:
    """Contacts as independent observations (what the experiment did before): for the check."""

    def mean_var(arm: ClusterSums) -> tuple[float, float]:
        mean = arm.y.sum() / arm.n.sum()
        # per-contact variance: within-user noise 1 plus the between-user spread of means
        between = np.average((arm.y / arm.n - mean) ** 2, weights=arm.n)
        return mean, (1.0 + between) / arm.n.sum()

    (a, va), (b, vb) = mean_var(treated), mean_var(control)
    half = stats.Z95 * np.sqrt(va + vb)
    return a - b - half, a - b + half


def covers(interval: tuple[float, float] | None, truth: float) -> bool:
    assert interval is not None
    return interval[0] <= truth <= interval[1]


def test_docstring_example_runs() -> None:
    assert doctest.testmod(stats).failed == 0


def test_user_clustered_interval_covers_the_true_lift() -> None:
    rng = np.random.default_rng(1)
    clustered, naive = [], []
    for _ in range(400):
        treated, control = users(rng, 200, TRUE_LIFT), users(rng, 200, 0.0)
        clustered.append(covers(difference(treated, control, TAU).ci95, TRUE_LIFT))
        naive.append(covers(naive_interval(treated, control), TRUE_LIFT))
    # 400 runs: the binomial sd of a 95 % coverage is 1.1 points.
    assert np.mean(clustered) == pytest.approx(0.95, abs=0.03)
    assert np.mean(naive) < 0.85  # contacts are not independent: too narrow


def test_always_valid_interval_holds_at_every_look() -> None:
    rng = np.random.default_rng(2)
    looks = np.linspace(40, 400, 19).astype(int)  # users per arm at each daily look
    ever_wrong_sequential, ever_wrong_fixed = [], []
    for _ in range(300):
        treated, control = users(rng, 400, TRUE_LIFT), users(rng, 400, 0.0)
        wrong_seq = wrong_fixed = False
        for k in looks:
            head = [ClusterSums(arm.y[:k], arm.n[:k]) for arm in (treated, control)]
            lift = difference(head[0], head[1], TAU)
            wrong_seq |= not covers(lift.always_valid_ci95, TRUE_LIFT)
            wrong_fixed |= not covers(lift.ci95, TRUE_LIFT)
        ever_wrong_sequential.append(wrong_seq)
        ever_wrong_fixed.append(wrong_fixed)
    assert np.mean(ever_wrong_sequential) <= 0.07
    assert np.mean(ever_wrong_fixed) > 0.12  # peeking at a fixed-n interval inflates errors


def test_cuped_covers_and_narrows_the_interval() -> None:
    rng = np.random.default_rng(3)
    cuped_covers, plain_width, cuped_width = [], [], []
    for _ in range(400):
        treated = users(rng, 200, TRUE_LIFT, pre_share=0.7)
        control = users(rng, 200, 0.0, pre_share=0.7)
        adjusted = cuped_difference(treated, control, TAU)
        assert adjusted is not None and adjusted.ci95 is not None
        plain = difference(treated, control, TAU).ci95
        assert plain is not None
        cuped_covers.append(covers(adjusted.ci95, TRUE_LIFT))
        cuped_width.append(adjusted.ci95[1] - adjusted.ci95[0])
        plain_width.append(plain[1] - plain[0])
    assert np.mean(cuped_covers) == pytest.approx(0.95, abs=0.03)
    # The user effect is most of the variance and 70 % of users have a pre-period.
    assert np.mean(cuped_width) < 0.8 * np.mean(plain_width)


def test_cuped_without_any_pre_period_is_none_and_small_arms_have_no_interval() -> None:
    rng = np.random.default_rng(4)
    treated, control = users(rng, 50, 0.0), users(rng, 50, 0.0)
    assert cuped_difference(treated, control, TAU) is None
    one = ClusterSums(y=np.array([4.0]), n=np.array([1.0]))
    assert ratio_mean(one) is None
    lift = difference(one, one, TAU)
    assert lift.estimate is None and lift.ci95 is None and lift.n == 2


def test_always_valid_halfwidth_is_wider_than_the_fixed_one_and_shrinks() -> None:
    widths = [always_valid_halfwidth(v, TAU) for v in (0.1, 0.01, 0.001)]
    assert widths == sorted(widths, reverse=True)
    assert all(w > stats.Z95 * np.sqrt(v) for w, v in zip(widths, (0.1, 0.01, 0.001), strict=True))
    assert always_valid_halfwidth(0.0, TAU) == 0.0
