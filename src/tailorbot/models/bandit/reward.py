"""From customer feedback to one bandit reward in [0, 1].

Three signals can follow a decision, each mapped onto [0, 1]:

=============  ===================================  =================
signal         mapping                              weight (default)
=============  ===================================  =================
``resolved``   True -> 1.0, False -> 0.0            0.5
``rating``     CSAT 1..5 -> ``(rating - 1) / 4``    0.4
``helpful``    offered article marked helpful        0.1
               (a helpful click) -> 1.0, marked
               not helpful -> 0.0
=============  ===================================  =================

When several arrive for one decision the reward is their weighted mean over the signals
that *did* arrive (the weights of the present signals are renormalised to sum to 1), so a
lone rating of 5 is worth 1.0 and a lone "resolved" is worth 1.0, while "resolved, rated 2"
gives ``(0.5 * 1 + 0.4 * 0.25) / 0.9 = 0.667``. No signal at all gives ``None``: there is
nothing to learn from, and treating silence as failure would punish variants shown to
customers who simply leave. Resolution weighs most because it is the outcome the business
pays for; the rating measures how the answer felt (where response variants differ most);
an article click is the weakest and noisiest signal.

>>> mapping = FeedbackReward()
>>> mapping.reward(rating=5)
1.0
>>> round(mapping.reward(resolved=True, rating=2), 3)
0.667
>>> mapping.reward() is None
True
>>> feedback_reward(resolved=False, rating=1, helpful=True)
0.1
"""

from __future__ import annotations

import math
from numbers import Integral


class FeedbackReward:
    """The weighted feedback-to-reward mapping (weights need not sum to 1).

    Parameters
    ----------
    resolution, rating, helpful
        Non-negative weight of each signal; at least one must be positive.
    """

    def __init__(self, resolution: float = 0.5, rating: float = 0.4, helpful: float = 0.1) -> None:
        self.resolution = resolution
        self.rating = rating
        self.helpful = helpful
        weights = {"resolution": resolution, "rating": rating, "helpful": helpful}
        for name, weight in weights.items():
            if not (math.isfinite(weight) and weight >= 0):
                raise ValueError(f"weight {name!r} must be a finite number >= 0, got {weight!r}")
        if not any(weights.values()):
            raise ValueError("at least one reward weight must be positive")

    def reward(
        self,
        *,
        rating: int | None = None,
        resolved: bool | None = None,
        helpful: bool | None = None,
    ) -> float | None:
        """The reward in [0, 1] for the signals given, or ``None`` when none was given."""
        parts: list[tuple[float, float]] = []
        if resolved is not None:
            parts.append((self.resolution, 1.0 if resolved else 0.0))
        if rating is not None:
            parts.append((self.rating, rating_score(rating)))
        if helpful is not None:
            parts.append((self.helpful, 1.0 if helpful else 0.0))
        total = sum(weight for weight, _ in parts)
        if total == 0.0:
            return None
        return sum(weight * value for weight, value in parts) / total

    def __repr__(self) -> str:
        return (
            f"FeedbackReward(resolution={self.resolution}, rating={self.rating}, "
            f"helpful={self.helpful})"
        )


def rating_score(rating: int) -> float:
    """A CSAT rating 1..5 on [0, 1]."""
    if isinstance(rating, bool) or not isinstance(rating, Integral) or not 1 <= rating <= 5:
        raise ValueError(f"rating must be an integer from 1 to 5, got {rating!r}")
    return (int(rating) - 1) / 4.0


DEFAULT_REWARD = FeedbackReward()


def feedback_reward(
    *, rating: int | None = None, resolved: bool | None = None, helpful: bool | None = None
) -> float | None:
    """:meth:`FeedbackReward.reward` with the default weights."""
    return DEFAULT_REWARD.reward(rating=rating, resolved=resolved, helpful=helpful)
