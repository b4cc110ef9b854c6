"""Logged decisions as arrays: what the off-policy estimators read.

Built from decision records (``DecisionStore.scan`` or the archive's ``iter_decisions``): a
decision counts once it has feedback and a logged propensity. Outcomes are kept per metric
(``reward`` in [0, 1], ``csat`` 1..5, ``resolution`` 0/1), ``nan`` where that signal did not
arrive.

>>> records = [
...     {"user_id": "u1", "variant": "concise", "propensity": 0.9, "context": {"x": 1.0},
...      "feedback": {"rating": 5, "resolved": True, "reward": 1.0}},
...     {"user_id": "u2", "variant": "empathetic", "propensity": 0.1, "context": {},
...      "feedback": {"rating": 2, "reward": 0.25}},
...     {"user_id": "u3", "variant": "concise", "propensity": 0.9, "context": {}},
... ]
>>> data = LoggedDecisions.from_records(records, actions=["concise", "empathetic"])
>>> len(data), data.action.tolist(), data.outcome("resolution").tolist()
(2, [0, 1], [1.0, nan])
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

METRICS = ("reward", "csat", "resolution")
_FEEDBACK_KEYS = {"reward": "reward", "csat": "rating", "resolution": "resolved"}


@dataclass(frozen=True)
class LoggedDecisions:
    actions: tuple[str, ...]  # the action set, in column order
    action: np.ndarray  # index of the logged action
    pscore: np.ndarray  # its logging propensity
    users: tuple[str, ...]
    contexts: tuple[Mapping[str, float], ...]
    outcomes: Mapping[str, np.ndarray]  # metric -> value per decision (nan: no such signal)
    arms: tuple[str, ...]  # the experiment arm of each decision

    def __len__(self) -> int:
        return len(self.action)

    @classmethod
    def from_records(
        cls, records: Iterable[Mapping[str, Any]], actions: Sequence[str] = ()
    ) -> LoggedDecisions:
        """Decisions with feedback and a propensity in (0, 1]; ``actions`` first, then any
        other variant the log holds."""
        rows = [r for r in records if _usable(r)]
        names = list(dict.fromkeys([*actions, *(str(r["variant"]) for r in rows)]))
        index = {name: i for i, name in enumerate(names)}
        outcomes = {
            metric: np.array([_outcome(r["feedback"], key) for r in rows], dtype=float)
            for metric, key in _FEEDBACK_KEYS.items()
        }
        return cls(
            actions=tuple(names),
            action=np.array([index[str(r["variant"])] for r in rows], dtype=int),
            pscore=np.array([float(r["propensity"]) for r in rows], dtype=float),
            users=tuple(str(r["user_id"]) for r in rows),
            contexts=tuple(dict(r.get("context") or {}) for r in rows),
            outcomes=outcomes,
            arms=tuple(str(r.get("arm", "")) for r in rows),
        )

    def outcome(self, metric: str) -> np.ndarray:
        if metric not in self.outcomes:
            raise ValueError(f"unknown metric {metric!r}; one of {', '.join(METRICS)}")
        return self.outcomes[metric]

    def subset(self, keep: np.ndarray) -> LoggedDecisions:
        picked = np.flatnonzero(keep)
        return LoggedDecisions(
            actions=self.actions,
            action=self.action[picked],
            pscore=self.pscore[picked],
            users=tuple(self.users[i] for i in picked),
            contexts=tuple(self.contexts[i] for i in picked),
            outcomes={m: v[picked] for m, v in self.outcomes.items()},
            arms=tuple(self.arms[i] for i in picked),
        )

    def user_codes(self) -> np.ndarray:
        """A stable integer per user (the clusters of the intervals)."""
        return np.array([zlib.crc32(u.encode()) for u in self.users], dtype=np.int64)

    def folds(self, count: int) -> np.ndarray:
        """A fold per decision, by user: one user's decisions are never split across folds."""
        return self.user_codes() % count


def _usable(record: Mapping[str, Any]) -> bool:
    feedback, propensity = record.get("feedback"), record.get("propensity")
    if not feedback or record.get("variant") is None or propensity is None:
        return False
    return 0.0 < float(propensity) <= 1.0


def _outcome(feedback: Mapping[str, Any], key: str) -> float:
    value = feedback.get(key)
    if value is None or isinstance(value, str):
        return math.nan
    return float(value)
