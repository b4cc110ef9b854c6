"""Small-sample statistics for the audit: Wilson intervals, the gap between two rates.

>>> low, high = wilson(45, 50)
>>> round(low, 3), round(high, 3)
(0.786, 0.957)
>>> gap = rate_gap(0.9, 100, 0.7, 50)
>>> round(gap[0], 2), gap[1] < 0.2 < gap[2]
(0.2, True)
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from tailorbot.models.evaluation.stats import ClusterSums, ratio_mean

Z95 = 1.959964


def wilson(successes: float, n: float, z: float = Z95) -> tuple[float, float]:
    """95 % Wilson score interval of a proportion (``(0, 1)`` when ``n`` is 0); ``n`` may be
    an effective sample size (:func:`clustered_mean`)."""
    if n <= 0:
        return 0.0, 1.0
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def rate_gap(best: float, n_best: int, value: float, n: int) -> tuple[float, float, float]:
    """``best - value`` with a 95 % (Wald) interval, for two independent proportions."""
    gap = best - value
    if n_best <= 0 or n <= 0:
        return gap, -1.0, 1.0
    se = math.sqrt(best * (1 - best) / n_best + value * (1 - value) / n)
    return gap, gap - Z95 * se, gap + Z95 * se


def clustered_mean(
    values: Sequence[tuple[str, float]], proportion: bool = False
) -> tuple[float, float | None, float | None, int] | None:
    """``(mean, low, high, users)`` of ``(user, value)`` pairs with a 95 % interval that
    treats users, not contacts, as independent (a user's contacts are correlated: an interval
    over contacts is too narrow); no interval below two users. A ``proportion`` (values 0 or
    1) gets a Wilson interval at the effective sample size the clustering leaves.

    >>> clustered_mean([("a", 5.0), ("a", 5.0), ("b", 1.0), ("b", 1.0)])[0]
    3.0
    """
    if not values:
        return None
    sums: dict[str, list[float]] = {}
    for user, value in values:
        entry = sums.setdefault(user, [0.0, 0.0])
        entry[0] += value
        entry[1] += 1.0
    y = np.array([s for s, _ in sums.values()])
    n = np.array([c for _, c in sums.values()])
    found = ratio_mean(ClusterSums(y, n))
    if found is None:
        return float(y.sum() / n.sum()), None, None, len(sums)
    mean, variance = found
    if proportion:
        contacts = float(n.sum())
        effective = min(contacts, mean * (1 - mean) / variance) if variance > 0 else contacts
        low, high = wilson(mean * effective, effective)
    else:
        half = Z95 * math.sqrt(variance)
        low, high = mean - half, mean + half
    return mean, low, high, len(sums)
