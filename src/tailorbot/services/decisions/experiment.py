"""A/B test of the personalized policy against a fixed, non-personalized control.

Users are split by a stable hash of ``(experiment name, user id)``: a share ``holdout`` of them
gets the control policy (intent-only article ranking and one fixed response variant), the rest
the personalized one. Outcomes (ratings, resolutions, rewards) are summed per arm in the
store's shared counters, so every server process adds to one report.

>>> exp = Experiment("demo", holdout=0.5)
>>> exp.arm_for("user-1") in ("control", "personalized")
True
>>> deltas = exp.outcome_deltas("control", rating=4, resolved=True, reward=0.9)
>>> report = exp.report_from(deltas)
>>> report.arms["control"].csat.mean, report.arms["control"].resolution_rate.mean
(4.0, 1.0)
"""

from __future__ import annotations

import math
import zlib

from tailorbot.services.decisions.schemas import ArmReport, ExperimentReport, MeanEstimate
from tailorbot.store.base import CounterStore

ARMS = ("personalized", "control")
Z95 = 1.959964


class Experiment:
    def __init__(self, name: str, holdout: float) -> None:
        self.name = name
        self.holdout = holdout
        self.namespace = f"experiment:{name}"

    def arm_for(self, user_id: str) -> str:
        bucket = zlib.crc32(f"{self.name}:{user_id}".encode()) / 2**32
        return "control" if bucket < self.holdout else "personalized"

    @staticmethod
    def outcome_deltas(
        arm: str, *, rating: int | None, resolved: bool | None, reward: float | None
    ) -> dict[str, float]:
        deltas = {f"{arm}/feedback": 1.0}
        if rating is not None:
            deltas |= {
                f"{arm}/rating_n": 1.0,
                f"{arm}/rating_sum": rating,
                f"{arm}/rating_sq": rating * rating,
            }
        if resolved is not None:
            deltas |= {f"{arm}/resolved_n": 1.0, f"{arm}/resolved_sum": float(resolved)}
        if reward is not None:
            deltas |= {
                f"{arm}/reward_n": 1.0,
                f"{arm}/reward_sum": reward,
                f"{arm}/reward_sq": reward * reward,
            }
        return deltas

    def record(
        self,
        store: CounterStore,
        arm: str,
        *,
        rating: int | None,
        resolved: bool | None,
        reward: float | None,
    ) -> None:
        store.increment(
            self.namespace,
            self.outcome_deltas(arm, rating=rating, resolved=resolved, reward=reward),
        )

    def report(self, store: CounterStore) -> ExperimentReport:
        return self.report_from(store.counters(self.namespace))

    def report_from(self, counters: dict[str, float]) -> ExperimentReport:
        arms: dict[str, ArmReport] = {}
        for arm in ARMS:

            def c(key: str, arm: str = arm) -> float:
                return counters.get(f"{arm}/{key}", 0.0)

            arms[arm] = ArmReport(
                feedback=int(c("feedback")),
                csat=_mean(c("rating_n"), c("rating_sum"), c("rating_sq")),
                resolution_rate=_proportion(c("resolved_n"), c("resolved_sum")),
                reward=_mean(c("reward_n"), c("reward_sum"), c("reward_sq")),
            )
        p, k = arms["personalized"], arms["control"]
        return ExperimentReport(
            name=self.name,
            holdout=self.holdout,
            arms=arms,
            csat_lift=_difference(p.csat, k.csat),
            resolution_lift=_difference(p.resolution_rate, k.resolution_rate),
        )


def _mean(n: float, total: float, squares: float) -> MeanEstimate:
    if n < 1:
        return MeanEstimate(n=0, mean=None)
    mean = total / n
    if n < 2:
        return MeanEstimate(n=int(n), mean=mean)
    var = max(0.0, (squares - n * mean * mean) / (n - 1))
    half = Z95 * math.sqrt(var / n)
    return MeanEstimate(n=int(n), mean=mean, ci95=(mean - half, mean + half))


def _proportion(n: float, successes: float) -> MeanEstimate:
    """Wilson score interval: honest near 0 and 1 and for small n."""
    if n < 1:
        return MeanEstimate(n=0, mean=None)
    p = successes / n
    denom = 1 + Z95**2 / n
    centre = (p + Z95**2 / (2 * n)) / denom
    half = Z95 * math.sqrt(p * (1 - p) / n + Z95**2 / (4 * n * n)) / denom
    return MeanEstimate(n=int(n), mean=p, ci95=(centre - half, centre + half))


def _difference(a: MeanEstimate, b: MeanEstimate) -> MeanEstimate | None:
    """a - b with a normal-approximation 95 % interval (half-widths combined in quadrature)."""
    if a.mean is None or b.mean is None or a.ci95 is None or b.ci95 is None:
        return None
    half_a = (a.ci95[1] - a.ci95[0]) / 2
    half_b = (b.ci95[1] - b.ci95[0]) / 2
    diff = a.mean - b.mean
    half = math.sqrt(half_a**2 + half_b**2)
    return MeanEstimate(n=min(a.n, b.n), mean=diff, ci95=(diff - half, diff + half))
