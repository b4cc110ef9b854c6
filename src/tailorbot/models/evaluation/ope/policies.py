"""Candidate policies to evaluate off-policy: their action distribution on logged contexts.

A policy that learns (a bandit) is trained on one part of the log and evaluated on another
(cross-fitting, :mod:`~tailorbot.models.evaluation.ope.evaluate`): its value is that of the
policy it becomes after learning from that part, frozen — not the value of its learning run.

>>> from tailorbot.models.bandit import LinUCB
>>> from tailorbot.models.evaluation.ope.data import LoggedDecisions
>>> records = [{"user_id": f"u{i}", "variant": v, "propensity": 0.5, "context": {},
...             "feedback": {"reward": 1.0 if v == "b" else 0.0}}
...            for i, v in enumerate(["a", "b"] * 20)]
>>> log = LoggedDecisions.from_records(records)
>>> FixedVariant("b").action_dist(log, log)[0].tolist()
[0.0, 1.0]
>>> greedy = LearnedBandit("context_free", lambda: LinUCB([], alpha=0.0, epsilon=0.1),
...                        contextual=False)
>>> greedy.action_dist(log, log)[0].round(3).tolist()
[0.05, 0.95]
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable

import numpy as np

from tailorbot.models.bandit import ContextualBandit
from tailorbot.models.evaluation.ope.data import LoggedDecisions


class TargetPolicy(ABC):
    name: str
    learns = False  # True: fit on the log (cross-fitted; needs users in two folds)

    @abstractmethod
    def action_dist(self, train: LoggedDecisions, test: LoggedDecisions) -> np.ndarray:
        """``len(test) x K``: the probability of each action in each context of ``test``,
        for the policy as it is after learning from ``train`` (if it learns)."""


class FixedVariant(TargetPolicy):
    """Always the same variant."""

    def __init__(self, variant: str) -> None:
        self.variant = variant
        self.name = f"fixed:{variant}"

    def action_dist(self, train: LoggedDecisions, test: LoggedDecisions) -> np.ndarray:
        if self.variant not in test.actions:
            raise ValueError(f"variant {self.variant!r} is not in the log's action set")
        dist = np.zeros((len(test), len(test.actions)))
        dist[:, test.actions.index(self.variant)] = 1.0
        return dist


class LearnedBandit(TargetPolicy):
    """A bandit (built by ``make``) that learns from ``train``'s logged rewards, then acts.

    ``contextual=False`` hides the context from it (a context-free bandit: the globally best
    variant). Only the features the bandit declares are read from the logged contexts.
    """

    learns = True

    def __init__(
        self, name: str, make: Callable[[], ContextualBandit], contextual: bool = True
    ) -> None:
        self.name = name
        self.make = make
        self.contextual = contextual

    def action_dist(self, train: LoggedDecisions, test: LoggedDecisions) -> np.ndarray:
        bandit = self.make()
        reward = train.outcome("reward")
        for i in range(len(train)):
            if not math.isnan(reward[i]):
                context = train.contexts[i] if self.contextual else {}
                bandit.learn_one(context, train.actions[int(train.action[i])], float(reward[i]))
        arms = list(test.actions)
        dist = np.empty((len(test), len(arms)))
        shared = None if self.contextual else bandit.probabilities({}, arms)[0]
        for i in range(len(test)):
            probs = shared or bandit.probabilities(test.contexts[i], arms)[0]
            dist[i] = [probs[a] for a in arms]
        return dist
