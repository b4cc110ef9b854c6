"""Percentile bootstrap over users: intervals for ratio metrics of clustered observations.

A user's sessions are not independent (a few users make many of them), so resampling
sessions would understate the uncertainty. Users are drawn with replacement; each draw's
estimate is the sum of the drawn users' values over the sum of their session counts.

>>> sums = np.array([[1.0], [0.0], [2.0], [1.0]])
>>> counts = np.array([1.0, 1.0, 2.0, 2.0])
>>> lo, hi = user_bootstrap(sums, counts, reps=2000, seed=0)
>>> float(lo[0]) <= 4 / 6 <= float(hi[0])
True
"""

from __future__ import annotations

import numpy as np

LEVEL = 0.95


def user_bootstrap(
    sums: np.ndarray, counts: np.ndarray, reps: int = 1000, seed: int = 0, level: float = LEVEL
) -> tuple[np.ndarray, np.ndarray]:
    """Per column of ``sums`` (users × metrics): the ``level`` percentile interval of
    ``sum(sums) / sum(counts)`` over ``reps`` user-level resamples."""
    n_users = len(counts)
    if n_users == 0 or reps < 1:
        nan = np.full(sums.shape[1], np.nan)
        return nan, nan
    rng = np.random.default_rng(seed)
    draws = rng.multinomial(n_users, np.full(n_users, 1.0 / n_users), size=reps)
    estimates = (draws @ sums) / (draws @ counts)[:, None]
    tail = (1.0 - level) / 2 * 100
    lo, hi = np.percentile(estimates, [tail, 100 - tail], axis=0)
    return lo, hi
