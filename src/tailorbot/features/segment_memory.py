"""Segment-level memory of the response variants, the cold-start prior of the customer's own.

Built from the shared counters of :data:`tailorbot.features.memory.NS_SEGMENT_VARIANT`
(the stream worker adds them as feedback events are applied). A variant's mean reward in a
segment is smoothed towards its mean over all customers, and that towards 0.5, by
``prior_strength`` pseudo-outcomes, so a segment with little evidence reads as everyone.

>>> stats = SegmentVariantStats.from_counters({"vip|concise|n": 4, "vip|concise|sum": 4,
...     "all|concise|n": 10, "all|concise|sum": 5})
>>> round(stats.mean("vip", "concise"), 3), round(stats.mean("new", "concise"), 3)
(0.722, 0.5)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from tailorbot.features.memory import ALL_SEGMENTS

MAX_MEANS = 4096


class SegmentVariantStats:
    """Mean reward per (segment, variant), smoothed; immutable once built."""

    def __init__(self, prior_strength: float = 5.0) -> None:
        if not prior_strength > 0:
            raise ValueError(f"prior_strength must be > 0, got {prior_strength!r}")
        self.prior_strength = prior_strength
        self._sums: dict[tuple[str, str], list[float]] = {}
        # mean() of each (segment, variant) asked, as the statistics are immutable once
        # built: every decision asks for each variant offered in the user's segment
        self._means: dict[tuple[str | None, str], float] = {}
        self._priors: dict[tuple[str | None, tuple[str, ...]], tuple[float, ...]] = {}

    @classmethod
    def from_counters(
        cls, counters: Mapping[str, float], prior_strength: float = 5.0
    ) -> SegmentVariantStats:
        """From ``{segment}|{variant}|n`` / ``|sum`` counters (other keys are ignored)."""
        stats = cls(prior_strength)
        for key, value in counters.items():
            parts = key.split("|")
            if len(parts) != 3 or parts[2] not in ("n", "sum"):
                continue
            entry = stats._sums.setdefault((parts[0], parts[1]), [0.0, 0.0])
            entry[0 if parts[2] == "n" else 1] += float(value)
        return stats

    def mean(self, segment: str | None, variant: str) -> float:
        key = (segment, variant)
        found = self._means.get(key)
        if found is None:
            found = self._mean(segment, variant)
            if len(self._means) >= MAX_MEANS:  # segments come from profiles: bound the keys
                self._means.clear()
            self._means[key] = found
        return found

    def priors(self, segment: str | None, variants: Sequence[str]) -> tuple[float, ...]:
        """:meth:`mean` of each of ``variants`` in ``segment``, remembered per segment and
        variants as the means are (a decision asks for a template's variants at once)."""
        key = (segment, tuple(variants))
        found = self._priors.get(key)
        if found is None:
            found = tuple(self.mean(segment, variant) for variant in variants)
            if len(self._priors) >= MAX_MEANS:
                self._priors.clear()
            self._priors[key] = found
        return found

    def _mean(self, segment: str | None, variant: str) -> float:
        m = self.prior_strength
        n, total = self._sums.get((ALL_SEGMENTS, variant), (0.0, 0.0))
        overall = (total + m * 0.5) / (n + m)
        if segment is None or segment == ALL_SEGMENTS:
            return overall
        n, total = self._sums.get((segment, variant), (0.0, 0.0))
        return (total + m * overall) / (n + m)
