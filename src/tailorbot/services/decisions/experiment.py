"""A/B test of the personalized policy against the strongest non-personalized control.

Users are split by a stable hash of ``(experiment name, user id)``: a share ``holdout`` of them
gets the control policy, the rest the personalized one. The same hash puts every user in one
of ``buckets`` buckets; outcomes (ratings, resolutions, rewards) are summed per arm and bucket
in the store's shared counters, so every server process adds to one report and a bucket holds
whole users: the report's intervals are clustered by user (docs/experiments.md). Before the
experiment's ``start`` every user is served by the control policy and their outcomes are kept
as the *pre-period* of the arm they will get: CUPED's covariate.

>>> exp = Experiment("demo", holdout=0.5, control="channel_language_tier_bandit")
>>> exp.arm_for("user-1") in ("control", "personalized")
True
>>> deltas = exp.outcome_deltas("control", "user-1", rating=4, resolved=True, reward=0.9)
>>> report = exp.report_from(deltas)
>>> report.control, report.arms["control"].csat.mean, report.arms["control"].feedback
('channel_language_tier_bandit', 4.0, 1)
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Mapping
from typing import Any

import numpy as np

from tailorbot.features.memory import PERSONALIZED_ARM
from tailorbot.models.evaluation.stats import ClusterSums, cuped_difference, difference, ratio_mean
from tailorbot.services.decisions.schemas import (
    ArmReport,
    CupedLift,
    ExperimentReport,
    Lift,
    MeanEstimate,
)
from tailorbot.store.base import CounterStore

ARMS = (PERSONALIZED_ARM, "control")
PRE_PERIOD = "pre_period"  # the arm of a decision made before the experiment's start
BUCKETS = 256
Z95 = 1.959964
# The mixing scale of each metric's always-valid interval: the size of effect it is tightest
# for (docs/experiments.md). Any value keeps the interval valid.
TAU = {"rating": 0.25, "resolved": 0.05, "reward": 0.05}
METRICS = ("rating", "resolved", "reward")
# The default control, as reports name it: a bandit over the non-personal context
# (features/context.py NON_PERSONAL_KEYS).
CONTROL_BANDIT = "channel_language_tier_bandit"


class Experiment:
    """The split, the outcome counters and the report of one experiment.

    Parameters
    ----------
    name
        Experiment name: part of the hash, so each experiment splits users afresh.
    holdout
        Share of users served by the control policy.
    control
        What the control policy is, for the report (``channel_language_tier_bandit`` or
        ``fixed_variant:<name>``).
    start
        Epoch seconds the experiment starts; before it everyone gets the control and outcomes
        count as the pre-period. ``None``: it has always run (no pre-period).
    buckets
        User buckets the outcome sums are kept in (the clusters of the intervals).
    """

    def __init__(
        self,
        name: str,
        holdout: float,
        control: str = CONTROL_BANDIT,
        start: float | None = None,
        buckets: int = BUCKETS,
    ) -> None:
        self.name = name
        self.holdout = holdout
        self.control = control
        self.start = start
        self.buckets = buckets
        if buckets < 2:
            raise ValueError(f"buckets must be >= 2, got {buckets!r}")
        self.namespace = f"experiment:{name}"
        # the hash of the key's first part, copied for each id: the state after the name
        # costs a copy, where a new hash parsed its arguments again (the same digest)
        self._name_hashed = hashlib.blake2b(f"{name}\x00".encode(), digest_size=8)

    def _hash(self, user_id: str) -> int:
        # A cryptographic hash: CRC32, used before, is linear, so two experiments' names gave
        # the same (or the exact opposite) split of ids of one length, and consecutive ids
        # fell into blocks far from the holdout share. The key separates name and id.
        # (blake2b of f"{name}\x00{user_id}", 8 bytes: a hash grows by update as if fed at once)
        hashed = self._name_hashed.copy()
        hashed.update(user_id.encode())
        return int.from_bytes(hashed.digest(), "big")

    def assigned_arm(self, user_id: str) -> str:
        """The arm the user belongs to once the experiment runs."""
        return "control" if (self._hash(user_id) >> 32) / 2**32 < self.holdout else PERSONALIZED_ARM

    def arm_for(self, user_id: str) -> str:
        """The arm serving the user now: :data:`PRE_PERIOD` before the start."""
        if self.start is not None and time.time() < self.start:
            return PRE_PERIOD
        return self.assigned_arm(user_id)

    def bucket_of(self, user_id: str) -> int:
        # The high 32 bits decide the arm; the low ones spread users over buckets within it.
        return (self._hash(user_id) & 0xFFFFFFFF) % self.buckets

    def counts(self, decision: Mapping[str, Any]) -> bool:
        """Whether this experiment's readout counts the decision's outcomes: only the
        experiment that served it does (one made under another name belongs to that
        readout); a record from before decisions named theirs counts in the current one."""
        return decision.get("experiment") in (None, self.name)

    def outcome_deltas(
        self,
        arm: str,
        user_id: str,
        *,
        rating: int | None,
        resolved: bool | None,
        reward: float | None,
        first: bool = True,
    ) -> dict[str, float]:
        """What one decision's feedback adds to the counters; ``first=False``: a signal that
        came after its first outcome (a rating after a click), which adds its metrics only."""
        if arm == PRE_PERIOD:
            prefix = f"{self.assigned_arm(user_id)}/{self.bucket_of(user_id)}/pre/"
        else:
            prefix = f"{arm}/{self.bucket_of(user_id)}/"
        deltas = {f"{prefix}feedback": 1.0} if first else {}
        values = {"rating": rating, "resolved": resolved, "reward": reward}
        for metric, value in values.items():
            if value is not None:
                deltas[f"{prefix}{metric}_n"] = 1.0
                deltas[f"{prefix}{metric}_sum"] = float(value)
        return deltas

    def record(
        self,
        store: CounterStore,
        arm: str,
        user_id: str,
        *,
        rating: int | None,
        resolved: bool | None,
        reward: float | None,
    ) -> None:
        deltas = self.outcome_deltas(arm, user_id, rating=rating, resolved=resolved, reward=reward)
        store.increment(self.namespace, deltas)

    def report(self, store: CounterStore) -> ExperimentReport:
        return self.report_from(store.counters(self.namespace))

    def report_from(self, counters: Mapping[str, float]) -> ExperimentReport:
        table = self._table(counters)
        arms = {arm: _arm_report(table[arm]) for arm in ARMS}
        lifts = {metric: _lift(table, metric) for metric in METRICS}
        return ExperimentReport(
            name=self.name,
            holdout=self.holdout,
            control=self.control,
            clusters=f"users, in {self.buckets} hash buckets",
            pre_period=self.start is not None,
            arms=arms,
            csat_lift=lifts["rating"],
            resolution_lift=lifts["resolved"],
            reward_lift=lifts["reward"],
        )

    def _table(self, counters: Mapping[str, float]) -> dict[str, dict[str, np.ndarray]]:
        """Per arm, per counter name (``rating_n``, ``pre/rating_sum``...): an array by bucket."""
        table: dict[str, dict[str, np.ndarray]] = {arm: {} for arm in ARMS}
        for key, value in counters.items():
            arm, _, rest = key.partition("/")
            bucket, _, stat = rest.partition("/")
            if arm not in table or not bucket.isdigit() or int(bucket) >= self.buckets:
                continue  # another layout's key (e.g. an older version's per-arm totals)
            column = table[arm].setdefault(stat, np.zeros(self.buckets))
            column[int(bucket)] += value
        return table


def _column(stats: Mapping[str, np.ndarray], name: str) -> np.ndarray:
    found = stats.get(name)
    return found if found is not None else np.zeros(0)


def _sums(stats: Mapping[str, np.ndarray], metric: str) -> ClusterSums:
    columns = [_column(stats, f"{p}{metric}_{s}") for p in ("", "pre/") for s in ("sum", "n")]
    size = max(len(c) for c in columns)
    y, n, x, m = (c if len(c) == size else np.zeros(size) for c in columns)
    return ClusterSums(y=y, n=n, x=x, m=m)


def _mean(sums: ClusterSums, clip: tuple[float, float]) -> MeanEstimate:
    n = int(sums.n.sum())
    if n == 0:
        return MeanEstimate(n=0, mean=None)
    estimate = ratio_mean(sums)
    mean = float(sums.y.sum()) / n
    if estimate is None or estimate[1] <= 0:  # one user, or no variation: no interval
        return MeanEstimate(n=n, mean=mean)
    half = Z95 * float(np.sqrt(estimate[1]))
    low, high = max(clip[0], mean - half), min(clip[1], mean + half)
    return MeanEstimate(n=n, mean=mean, ci95=(low, high))


def _arm_report(stats: Mapping[str, np.ndarray]) -> ArmReport:
    return ArmReport(
        feedback=int(_column(stats, "feedback").sum()),
        csat=_mean(_sums(stats, "rating"), (1.0, 5.0)),
        resolution_rate=_mean(_sums(stats, "resolved"), (0.0, 1.0)),
        reward=_mean(_sums(stats, "reward"), (0.0, 1.0)),
    )


def _lift(table: Mapping[str, Mapping[str, np.ndarray]], metric: str) -> Lift | None:
    treated, control = _sums(table["personalized"], metric), _sums(table["control"], metric)
    plain = difference(treated, control, TAU[metric])
    if plain.estimate is None or plain.ci95 is None or plain.always_valid_ci95 is None:
        return None
    adjusted = cuped_difference(treated, control, TAU[metric])
    cuped = None
    if adjusted is not None and adjusted.estimate is not None and adjusted.ci95 is not None:
        cuped = CupedLift(
            estimate=adjusted.estimate,
            ci95=adjusted.ci95,
            always_valid_ci95=adjusted.always_valid_ci95,
        )
    return Lift(
        estimate=plain.estimate,
        ci95=plain.ci95,
        always_valid_ci95=plain.always_valid_ci95,
        se=plain.se,
        n=plain.n,
        clusters=plain.clusters,
        cuped=cuped,
    )
