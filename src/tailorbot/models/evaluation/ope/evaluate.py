"""Evaluate candidate policies on a log: cross-fitted, per metric, with every estimator.

The log is split into ``folds`` by user. For each fold, the reward model (doubly robust) and
every learning policy are fit on the other folds and applied to this one, so no decision is
scored by a model that saw it. When every user falls in one fold there is nothing to hold
out: the doubly robust rows and the learning policies' rows then carry no value (``note``
says why) rather than a model scored on its own training rows. The reward model reads the
decision context without :data:`~tailorbot.features.context.ACTION_KEYS`: those describe
the logged variant only, so as features of ``q(x, a')`` for another variant they would leak
the logged action. The logged policy itself needs no weights: its value is the mean observed
outcome (estimator ``on_policy``).

>>> from tailorbot.models.evaluation.ope import FixedVariant, LoggedDecisions, SelfNormalizedIPS
>>> records = [{"user_id": f"u{i}", "variant": "ab"[i % 2], "propensity": 0.5, "context": {},
...             "feedback": {"reward": float(i % 2)}} for i in range(40)]
>>> found = evaluate_policies(LoggedDecisions.from_records(records), [FixedVariant("b")],
...                           [SelfNormalizedIPS()], metrics=["reward"])
>>> [(e.policy, e.estimator, e.value, e.n) for e in found]
[('logged', 'on_policy', 0.5, 40), ('fixed:b', 'snips', 1.0, 40)]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from tailorbot.features.context import ACTION_KEYS
from tailorbot.models.evaluation.ope.base import (
    OffPolicyEstimator,
    PolicyValue,
    mean_with_interval,
    no_value,
)
from tailorbot.models.evaluation.ope.data import METRICS, LoggedDecisions
from tailorbot.models.evaluation.ope.policies import TargetPolicy
from tailorbot.models.evaluation.ope.reward_model import RidgeRewardModel

DETERMINISTIC = 0.999  # a logged propensity this high: the logger took no other action
ONE_FOLD = "no cross-fitting: every user falls in one fold, nothing to hold out"


@dataclass(frozen=True, slots=True)
class Estimate:
    policy: str
    estimator: str
    metric: str
    value: float | None  # None: no logged support, or no cross-fitting (``note``)
    ci95: tuple[float, float] | None  # None: no interval can be computed (``note``)
    n: int
    ess: float
    unsupported: float  # target probability on actions a deterministic logger never took
    note: str = ""


def evaluate_policies(
    data: LoggedDecisions,
    policies: Sequence[TargetPolicy],
    estimators: Sequence[OffPolicyEstimator],
    metrics: Sequence[str] = METRICS,
    folds: int = 2,
) -> list[Estimate]:
    """One :class:`Estimate` per metric, policy and estimator (plus ``logged``/``on_policy``)."""
    if folds < 2:
        raise ValueError(f"folds must be >= 2 for cross-fitting, got {folds!r}")
    out: list[Estimate] = []
    for metric in metrics:
        observed = data.subset(~np.isnan(data.outcome(metric)))
        if len(observed) < 2:
            continue
        reward, clusters = observed.outcome(metric), observed.user_codes()
        ones = np.ones(len(observed))
        logged = mean_with_interval(reward, ones, clusters)
        out.append(_estimate("logged", "on_policy", metric, logged, 0.0))
        fold = observed.folds(folds)
        crossed = len(np.unique(fold)) >= 2
        q = cross_fitted_rewards(observed, metric, fold) if crossed else None
        unfit = no_value(len(observed), ONE_FOLD)  # what needs cross-fitting gets without it
        for policy in policies:
            if not crossed and policy.learns:
                out.extend(_estimate(policy.name, e.name, metric, unfit, 0.0) for e in estimators)
                continue
            dist = cross_fitted_dist(policy, observed, fold)
            unsupported = float(np.mean(_unsupported(observed, dist)))
            for estimator in estimators:
                if q is None and estimator.needs_rewards:
                    value = unfit
                else:
                    value = estimator.estimate_policy_value(
                        reward, observed.action, observed.pscore, dist, q, clusters
                    )
                out.append(_estimate(policy.name, estimator.name, metric, value, unsupported))
    return out


def reward_features(data: LoggedDecisions) -> list[str]:
    """The reward model's features: every logged context key but :data:`ACTION_KEYS`.

    >>> from tailorbot.models.evaluation.ope.data import LoggedDecisions
    >>> log = LoggedDecisions.from_records([{"user_id": "u", "variant": "a", "propensity": 1.0,
    ...     "context": {"vip": 1.0, "own_reward": 0.9}, "feedback": {"reward": 1.0}}])
    >>> reward_features(log)
    ['vip']
    """
    return sorted({name for context in data.contexts for name in context} - set(ACTION_KEYS))


def cross_fitted_rewards(data: LoggedDecisions, metric: str, fold: np.ndarray) -> np.ndarray:
    """``n x K`` reward-model predictions, each row from a model fit on the other folds (at
    least two folds must hold users)."""
    if len(np.unique(fold)) < 2:
        raise ValueError(ONE_FOLD)
    features = reward_features(data)
    reward = data.outcome(metric)
    q = np.zeros((len(data), len(data.actions)))
    for k in np.unique(fold):
        train, test = data.subset(fold != k), data.subset(fold == k)
        model = RidgeRewardModel(features, len(data.actions)).fit(
            train.contexts, train.action, train.outcome(metric)
        )
        q[fold == k] = model.predict(test.contexts)
    return np.nan_to_num(q, nan=float(np.nanmean(reward)))


def cross_fitted_dist(policy: TargetPolicy, data: LoggedDecisions, fold: np.ndarray) -> np.ndarray:
    dist = np.zeros((len(data), len(data.actions)))
    for k in np.unique(fold):
        train, test = data.subset(fold != k), data.subset(fold == k)
        dist[fold == k] = policy.action_dist(train if len(train) else test, test)
    return dist


def _unsupported(data: LoggedDecisions, dist: np.ndarray) -> np.ndarray:
    taken = dist[np.arange(len(data)), data.action]
    return np.where(data.pscore >= DETERMINISTIC, 1.0 - taken, 0.0)


def _estimate(
    policy: str, estimator: str, metric: str, value: PolicyValue, unsupported: float
) -> Estimate:
    return Estimate(
        policy=policy,
        estimator=estimator,
        metric=metric,
        value=value.value,
        ci95=value.ci95,
        n=value.n,
        ess=value.ess,
        unsupported=unsupported,
        note=value.note,
    )
