"""The contextual-bandit interface and the linear statistics every linear policy shares.

A policy picks one arm (a response variant) for a context (a dict of named floats) and logs
the probability it had of picking that arm, so that decisions can later be evaluated off-policy
(inverse propensity scoring needs a non-zero propensity for every arm a target policy may take).

**Features.** The model declares its feature names once (constructor argument ``features``);
a context is mapped onto that fixed order plus a trailing bias term of 1.0. Names the model
does not know are ignored, missing names count as 0.0, and a non-finite value is an error.

**Action features.** ``select`` and ``probabilities`` take optional ``arm_features``: per
offered arm, features of that action (as in Vowpal Wabbit's ``cb_explore_adf``: e.g. this
customer's past reward with that response variant). Arm ``a`` is scored on the context
merged with ``arm_features[a]``; learn from the merged context of the arm that was played.
The offered arms may differ from call to call (each template has its own variants); an arm
never seen scores with the prior.

**Shared state.** Each arm keeps the additive sufficient statistics of a ridge regression,
packed in one vector of doubles under ``arm/<arm>`` (:meth:`ContextualBandit.statistics`):

* first the number of updates;
* then ``b``, the sum of ``reward * x`` (``d`` values, ``d`` the features plus the bias);
* then the Gram matrix ``A``, the sum of ``x xᵀ``, its upper triangle row by row
  (``d (d + 1) / 2`` values; the ridge prior is *not* included, it is a constructor
  argument, not data).

:meth:`ContextualBandit.statistics_delta` returns what one update adds; since addition
commutes, many server processes can each add their deltas to one store's vector counters
(``CounterStore.add_vectors``: one row an arm, where a counter an entry cost a row and an
upsert each) and rebuild the model from the sums with
:meth:`ContextualBandit.load_statistics`. That also reads the same statistics as one
counter an entry (``arm/<arm>/A/<i>/<j>``, ``arm/<arm>/b/<i>``, ``arm/<arm>/n``), as a store
written before the packed layout holds them, and adds them up. Keys that do not start
with ``arm/`` are ignored, so a namespace may carry other bookkeeping. Put
:meth:`ContextualBandit.feature_signature` in the namespace name so that a model with a
different feature list starts from fresh statistics.

>>> from tailorbot.models.bandit import LinUCB
>>> bandit = LinUCB(["vip"])
>>> bandit.statistics_delta({"vip": 2.0}, "concise", 0.5)["arm/concise"].tolist()
[1.0, 1.0, 0.5, 4.0, 2.0, 1.0]
"""

from __future__ import annotations

import functools
import hashlib
import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from tailorbot.compiled import native, slotted_builder

ARM_PREFIX = "arm/"
_CHANGED = "was the feature list changed? use feature_signature() in the namespace"
ArmFeatures = Mapping[str, Mapping[str, float]]


@dataclass(frozen=True, slots=True)
class Choice:
    """What :meth:`ContextualBandit.select` picked.

    ``propensity`` is the probability the policy had of picking ``arm``; ``scores`` holds the
    value each offered arm was ranked by (documented per policy).
    """

    arm: str
    propensity: float
    scores: dict[str, float]

    @property
    def explored(self) -> bool:
        """Whether ``arm`` scored below the best offered arm (an arm tied for best is not
        exploration: fresh arms all tie).

        >>> tied, below = {"a": 1.0, "b": 1.0}, {"a": 2.0, "b": 1.0}
        >>> Choice("b", 0.5, tied).explored, Choice("b", 0.1, below).explored
        (False, True)
        """
        scores = self.scores
        return bool(scores) and scores.get(self.arm, -math.inf) < max(scores.values())


@functools.cache
def choice_builder() -> Callable[[str, float, dict[str, float]], Choice]:
    """What builds the serving path's choices (see
    :func:`tailorbot.compiled.slotted_builder`)."""
    return slotted_builder(Choice)


class ContextualBandit(ABC):
    """A contextual bandit over linear per-arm statistics (disjoint models, one per arm).

    Subclasses implement :meth:`probabilities`: the selection distribution over the offered
    arms. :meth:`select` draws from it, so the logged propensity is the probability the arm
    actually had.
    """

    # Subclasses set these in their constructor (stored verbatim, River style).
    features: Sequence[str]
    ridge: float
    epsilon: float
    seed: int | None

    def _init_state(self) -> None:
        if isinstance(self.features, str):
            raise TypeError("features must be a sequence of names, not a single string")
        names = list(self.features)
        if len(set(names)) != len(names):
            raise ValueError("features must not contain duplicate names")
        if not (self.ridge > 0 and math.isfinite(self.ridge)):
            raise ValueError(f"ridge must be a positive number, got {self.ridge!r}")
        if not 0.0 <= self.epsilon <= 1.0:
            raise ValueError(f"epsilon must be within [0, 1], got {self.epsilon!r}")
        self._index = {name: i for i, name in enumerate(names)}
        self._plain_names: bool | None = None  # see _plain
        self._dim = len(names) + 1  # + bias
        self._rng = np.random.default_rng(self.seed)
        self._gram: dict[str, np.ndarray] = {}
        self._xr: dict[str, np.ndarray] = {}
        self._count: dict[str, int] = {}
        self._posterior: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    # --- the policy --------------------------------------------------------------------
    @abstractmethod
    def probabilities(
        self,
        context: Mapping[str, float],
        arms: Sequence[str],
        rng: np.random.Generator | None = None,
        arm_features: ArmFeatures | None = None,
    ) -> tuple[dict[str, float], dict[str, float]]:
        """The selection probability of each arm (summing to 1) and each arm's score."""

    def select(
        self,
        context: Mapping[str, float],
        arms: Sequence[str],
        rng: np.random.Generator | None = None,
        arm_features: ArmFeatures | None = None,
    ) -> Choice:
        """Pick one of ``arms`` for ``context``; ``rng`` defaults to the model's seeded one."""
        rng = rng if rng is not None else self._rng
        probs, scores = self.probabilities(context, arms, rng, arm_features)
        arm = _draw(probs, rng.random())
        return Choice(arm=arm, propensity=probs[arm], scores=scores)

    def learn_one(self, context: Mapping[str, float], arm: str, reward: float) -> None:
        """Update ``arm``'s statistics with the ``reward`` observed for ``context``."""
        _check_arm(arm)
        reward = _check_reward(reward)
        x = self.vector(context)
        gram, xr = self._arm_state(arm)
        gram += np.outer(x, x)
        xr += reward * x
        self._count[arm] += 1
        self._posterior.pop(arm, None)

    # --- features ----------------------------------------------------------------------
    def vector(self, context: Mapping[str, float]) -> np.ndarray:
        """``context`` in the model's feature order, with the bias 1.0 last."""
        return np.array(self._values(context))

    def _values(self, context: Mapping[str, float]) -> list[float]:
        """:meth:`vector` as a list: filled in Python, one array at the end (numpy's per-item
        assignment costs more than the arithmetic at these sizes)."""
        values = [0.0] * self._dim
        values[-1] = 1.0
        index = self._index
        for name, value in context.items():
            i = index.get(name)
            if i is None:
                continue
            value = float(value)
            if not math.isfinite(value):
                raise ValueError(f"context feature {name!r} is not a finite number: {value!r}")
            values[i] = value
        return values

    def _arm_rows(
        self, context: Mapping[str, float], arms: Sequence[str], arm_features: ArmFeatures
    ) -> list[list[float]]:
        """One row per arm, as lists: ``context`` merged with the arm's own features."""
        base = self._values(context)
        index = self._index
        rows = []
        for arm in arms:
            row = base.copy()
            for name, value in arm_features.get(arm, {}).items():
                i = index.get(name)
                if i is not None:
                    value = float(value)
                    if not math.isfinite(value):
                        raise ValueError(f"action feature {name!r} of arm {arm!r} is {value!r}")
                    row[i] = value
            rows.append(row)
        return rows

    def feature_signature(self) -> str:
        """A short digest of the feature list, to put in a shared counters' namespace."""
        return hashlib.sha256("\n".join(self.features).encode()).hexdigest()[:12]

    # --- shared statistics -------------------------------------------------------------
    def statistics_delta(
        self, context: Mapping[str, float], arm: str, reward: float
    ) -> dict[str, np.ndarray]:
        """What :meth:`learn_one` would add, as the packed vector of ``arm``."""
        _check_arm(arm)
        reward = _check_reward(reward)
        x = np.array(self._values(context))
        rows, cols = _triangle(self._dim)
        return {ARM_PREFIX + arm: np.concatenate(((1.0,), reward * x, x[rows] * x[cols]))}

    def statistics(self) -> dict[str, np.ndarray]:
        """The model's whole state as packed vectors (what the summed deltas of its updates
        are)."""
        rows, cols = _triangle(self._dim)
        return {
            ARM_PREFIX + arm: np.concatenate(
                ((float(self._count[arm]),), self._xr[arm], self._gram[arm][rows, cols])
            )
            for arm in self._gram
        }

    def load_statistics(
        self,
        vectors: Mapping[str, Sequence[float] | np.ndarray],
        counters: Mapping[str, float] | None = None,
    ) -> None:
        """Replace the learned state with the one the summed packed ``vectors`` describe,
        plus ``counters``: statistics as one counter an entry (see the module's docstring).

        On a bad key or value nothing changes and a ``ValueError`` names the key.
        """
        gram: dict[str, np.ndarray] = {}
        xr: dict[str, np.ndarray] = {}
        count: dict[str, int] = {}
        dim = self._dim
        rows, cols = _triangle(dim)
        for key, packed in vectors.items():
            if not key.startswith(ARM_PREFIX):
                continue
            arm = key[len(ARM_PREFIX) :]
            if not arm or "/" in arm:
                raise ValueError(f"malformed bandit statistics key {key!r}")
            values = np.asarray(packed, dtype=float)
            if values.shape != (packed_size(dim),):
                raise ValueError(
                    f"bandit statistics {key!r} hold {values.size} values, not the "
                    f"{packed_size(dim)} of a model with {dim - 1} features ({_CHANGED})"
                )
            if not np.isfinite(values).all():
                raise ValueError(f"bandit statistics {key!r} are not all finite")
            gram[arm] = np.zeros((dim, dim))
            gram[arm][rows, cols] = gram[arm][cols, rows] = values[1 + dim :]
            xr[arm] = values[1 : 1 + dim].copy()
            count[arm] = int(round(values[0]))
        for key, raw in (counters or {}).items():
            if not key.startswith(ARM_PREFIX):
                continue
            arm, kind, idx = _parse_key(key, dim)
            value = float(raw)
            if not math.isfinite(value):
                raise ValueError(f"bandit statistics key {key!r} is not finite: {value!r}")
            if arm not in gram:
                gram[arm], xr[arm], count[arm] = self._empty_state()
            if kind == "A":
                i, j = idx
                gram[arm][i, j] += value
                gram[arm][j, i] = gram[arm][i, j]
            elif kind == "b":
                xr[arm][idx[0]] += value
            else:
                count[arm] += int(round(value))
        self._gram, self._xr, self._count, self._posterior = gram, xr, count, {}

    # --- learned state -----------------------------------------------------------------
    @property
    def arms(self) -> list[str]:
        """Arms that have statistics (learned or loaded)."""
        return list(self._gram)

    def n_updates(self, arm: str) -> int:
        return self._count.get(arm, 0)

    def coefficients(self, arm: str) -> dict[str, float]:
        """The ridge-regression weights of ``arm`` by feature name (``"bias"`` last)."""
        _, theta = self._solve(arm)
        names = [*self.features, "bias"]
        return {name: float(w) for name, w in zip(names, theta, strict=True)}

    def _arm_state(self, arm: str) -> tuple[np.ndarray, np.ndarray]:
        if arm not in self._gram:
            self._gram[arm], self._xr[arm], self._count[arm] = self._empty_state()
        return self._gram[arm], self._xr[arm]

    def _empty_state(self) -> tuple[np.ndarray, np.ndarray, int]:
        return np.zeros((self._dim, self._dim)), np.zeros(self._dim), 0

    def _solve(self, arm: str) -> tuple[np.ndarray, np.ndarray]:
        """``(A^-1, theta)`` of ``arm``, ``A = ridge * I + gram``; an unseen arm gets the prior."""
        cached = self._posterior.get(arm)
        if cached is not None:
            return cached
        gram = self._gram.get(arm)
        xr = self._xr.get(arm)
        a = self.ridge * np.eye(self._dim) + (gram if gram is not None else 0.0)
        a_inv = np.linalg.inv(a)
        theta = a_inv @ xr if xr is not None else np.zeros(self._dim)
        self._posterior[arm] = (a_inv, theta)
        return a_inv, theta

    def _posterior_moments(
        self,
        context: Mapping[str, float],
        arms: Sequence[str],
        arm_features: ArmFeatures | None = None,
    ) -> tuple[list[float], list[float]]:
        """Per arm: the predicted reward ``x . theta`` and the width ``sqrt(x A^-1 x)``, where
        ``x`` is :meth:`vector` of ``context``, merged with the arm's own features when
        given (:meth:`_arm_rows`). Plain floats: the policies' arithmetic
        on a few arms is cheaper in Python than in numpy, and gives the same doubles."""
        loops = native()
        if loops is not None and type(context) is dict and type(arms) is list and self._plain():
            # the rows and the moments in one call: the same doubles as the loop below
            try:
                solved = [self._solve(arm) for arm in arms]
            except np.linalg.LinAlgError:  # raised below, after the rows' own errors
                solved = None
            if solved is not None:
                features = arm_features or None
                moments = loops.arm_moments(context, self._index, arms, features, solved)
                if moments is not None:  # None: a value for float() to read, below
                    return moments
        if arm_features:
            rows = self._arm_rows(context, arms, arm_features)
        else:
            rows = [self._values(context)] * len(arms)
        means: list[float] = []
        widths: list[float] = []
        for row, arm in zip(rows, arms, strict=True):
            a_inv, theta = self._solve(arm)
            if loops is not None:  # numpy's per-call cost, a few arms a decision, is the most
                mean, width = loops.posterior_moment(row, a_inv, theta)
            else:
                x = np.array(row)
                mean, width = float(x @ theta), math.sqrt(max(float(x @ a_inv @ x), 0.0))
            means.append(mean)
            widths.append(width)
        return means, widths

    def _plain(self) -> bool:
        """Whether every feature name is a plain str: a lookup among them then runs no
        Python code (a str subclass's ``__eq__`` could change the context mid-walk)."""
        plain = self.__dict__.get("_plain_names")
        if plain is None:
            plain = self._plain_names = all(type(name) is str for name in self._index)
        return bool(plain)

    def _mix_epsilon(self, greedy: Sequence[float], offered: int | None = None) -> list[float]:
        """Blend a policy's distribution over ``offered`` arms (default: one value an arm)
        with the uniform one: the epsilon floor."""
        floor = self.epsilon / (len(greedy) if offered is None else offered)
        keep = 1.0 - self.epsilon
        return [floor + keep * p for p in greedy]

    def __repr__(self) -> str:
        return f"{type(self).__name__}(features={list(self.features)!r}, arms={self.arms!r})"


def check_arms(arms: Sequence[str]) -> list[str]:
    """Offered arms as a list: non-empty, unique, valid names."""
    if isinstance(arms, str):
        raise TypeError("arms must be a sequence of names, not a single string")
    arms = list(arms)
    if not arms:
        raise ValueError("at least one arm must be offered")
    if len(set(arms)) != len(arms):
        raise ValueError("offered arms must be unique")
    for arm in arms:
        _check_arm(arm)
    return arms


def _check_arm(arm: str) -> None:
    if not isinstance(arm, str) or not arm or "/" in arm:
        raise ValueError(f"arm names must be non-empty strings without '/', got {arm!r}")


def _check_reward(reward: float) -> float:
    reward = float(reward)
    if not math.isfinite(reward):
        raise ValueError(f"reward must be a finite number, got {reward!r}")
    return reward


def packed_size(dim: int) -> int:
    """The length of an arm's packed statistics for a model of ``dim`` dimensions (the
    features and the bias): the count, ``b`` and the upper triangle of ``A``."""
    return 1 + dim + dim * (dim + 1) // 2


@functools.cache
def _triangle(dim: int) -> tuple[np.ndarray, np.ndarray]:
    """The rows and columns of the upper triangle of a ``dim`` square, row by row (made
    once: every feedback packs one)."""
    rows, cols = np.triu_indices(dim)
    rows.flags.writeable = cols.flags.writeable = False  # shared by every caller
    return rows, cols


def _parse_key(key: str, dim: int) -> tuple[str, str, tuple[int, ...]]:
    """``arm/<arm>/A/i/j`` | ``arm/<arm>/b/i`` | ``arm/<arm>/n`` -> (arm, kind, indices)."""
    parts = key.split("/")
    try:
        if len(parts) == 5 and parts[2] == "A":
            idx: tuple[int, ...] = (int(parts[3]), int(parts[4]))
        elif len(parts) == 4 and parts[2] == "b":
            idx = (int(parts[3]),)
        elif len(parts) == 3 and parts[2] == "n":
            idx = ()
        else:
            raise ValueError
    except ValueError:
        raise ValueError(f"malformed bandit statistics key {key!r}") from None
    if not parts[1] or any(not 0 <= i < dim for i in idx):
        raise ValueError(
            f"bandit statistics key {key!r} does not fit a model with {dim - 1} features "
            f"({_CHANGED})"
        )
    return parts[1], parts[2], idx


def _draw(probs: Mapping[str, float], u: float) -> str:
    """The arm whose share of the cumulative probabilities holds ``u`` (uniform in [0, 1)).

    One uniform draw and a running sum: numpy's ``Generator.choice(p=...)`` validates and
    copies its inputs, which cost more than the rest of the selection.
    """
    total = 0.0  # summed in order, as sum() did before Python 3.12 (LinUCB's compiled draw)
    for p in probs.values():
        total += p
    threshold = u * total
    running = 0.0
    arm = ""
    for arm, p in probs.items():
        running += p
        if threshold < running:
            return arm
    return arm  # rounding left threshold at the total: the last arm
