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

Z95 = 1.959964


def wilson(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """95 % Wilson score interval of a proportion (``(0, 1)`` when ``n`` is 0)."""
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


def mean_interval(values: Sequence[float]) -> tuple[float, float, float] | None:
    """Mean with a 95 % normal interval; None without values."""
    n = len(values)
    if n == 0:
        return None
    mean = sum(values) / n
    if n == 1:
        return mean, mean, mean
    var = sum((v - mean) ** 2 for v in values) / (n - 1)
    half = Z95 * math.sqrt(var / n)
    return mean, mean - half, mean + half
