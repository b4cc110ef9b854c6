"""The few settings the feature state depends on, in a small frozen object.

:class:`FeatureParams` is what the hot path reads; build it once from
:class:`tailorbot.config.Settings` (or anything with the same attribute names).

>>> from tailorbot.config import Settings
>>> FeatureParams.of(Settings(lateness_s=60)).horizon_s
2592060.0
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

DAY_S = 86400.0
# The longest feature window; the state keeps per-event detail this far back (plus lateness).
RETENTION_S = 30 * DAY_S


@dataclass(frozen=True, slots=True)
class FeatureParams:
    """``lateness_s``: how far behind the user's newest event a view's ``now`` may lie and all
    windows still be exact (it pads the retention horizon); ``recent_intents``: how many last
    intents to keep; ``csat_ewma_alpha``: weight of the newest rating in the CSAT EWMA."""

    lateness_s: float = 600.0
    recent_intents: int = 10
    csat_ewma_alpha: float = 0.3

    def __post_init__(self) -> None:
        if self.lateness_s < 0:
            raise ValueError(f"lateness_s must be >= 0, got {self.lateness_s}")
        if self.recent_intents < 1:
            raise ValueError(f"recent_intents must be >= 1, got {self.recent_intents}")
        if not 0 < self.csat_ewma_alpha <= 1:
            raise ValueError(f"csat_ewma_alpha must be in (0, 1], got {self.csat_ewma_alpha}")

    @property
    def horizon_s(self) -> float:
        """Per-event detail older than the user's newest event time minus this is folded away."""
        return RETENTION_S + self.lateness_s

    @classmethod
    def of(cls, source: Any) -> FeatureParams:
        """``source`` as params: a FeatureParams as is, else read from a Settings-like object."""
        if isinstance(source, FeatureParams):
            return source
        if source is None:
            return cls()
        return cls(
            lateness_s=float(source.lateness_s),
            recent_intents=int(source.recent_intents),
            csat_ewma_alpha=float(source.csat_ewma_alpha),
        )
