"""The reward model of the doubly robust estimator: one ridge regression per action."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np


class RidgeRewardModel:
    """Predicts each action's reward from the decision context (plus a bias), one ridge
    regression per action; an action without data predicts the overall mean.

    >>> model = RidgeRewardModel(features=["vip"], n_actions=2, ridge=1e-6)
    >>> model = model.fit([{"vip": 1.0}, {"vip": 0.0}, {"vip": 1.0}], [0, 0, 1], [1.0, 0.0, 0.5])
    >>> model.predict([{"vip": 1.0}]).round(2).tolist()
    [[1.0, 0.5]]
    """

    def __init__(self, features: Sequence[str], n_actions: int, ridge: float = 1.0) -> None:
        self.features = features
        self.n_actions = n_actions
        self.ridge = ridge
        self._index = {name: i for i, name in enumerate(features)}
        self._theta = np.zeros((n_actions, len(features) + 1))

    def vectors(self, contexts: Sequence[Mapping[str, float]]) -> np.ndarray:
        x = np.zeros((len(contexts), len(self.features) + 1))
        x[:, -1] = 1.0
        for row, context in enumerate(contexts):
            for name, value in context.items():
                i = self._index.get(name)
                if i is not None:
                    x[row, i] = float(value)
        return x

    def fit(
        self,
        contexts: Sequence[Mapping[str, float]],
        actions: Sequence[int] | np.ndarray,
        rewards: Sequence[float] | np.ndarray,
    ) -> RidgeRewardModel:
        x, a, r = self.vectors(contexts), np.asarray(actions), np.asarray(rewards, dtype=float)
        overall = float(r.mean()) if len(r) else 0.0
        dim = x.shape[1]
        for k in range(self.n_actions):
            rows = a == k
            # Centred on the overall mean: an action with little data shrinks towards it.
            gram = x[rows].T @ x[rows] + self.ridge * np.eye(dim)
            theta = np.linalg.solve(gram, x[rows].T @ (r[rows] - overall))
            theta[-1] += overall
            self._theta[k] = theta
        return self

    def predict(self, contexts: Sequence[Mapping[str, float]]) -> np.ndarray:
        """``n x K`` predicted rewards."""
        return self.vectors(contexts) @ self._theta.T


class VariantRewardModel:
    """A :class:`RidgeRewardModel` over named response variants: what the learning pipeline
    trains on logged decisions and keeps in the registry (kind ``reward``). A variant it never
    saw is predicted the mean reward it was fitted on.

    >>> model = VariantRewardModel(ridge=1e-6).fit(
    ...     [{"vip": 1.0}, {"vip": 0.0}, {"vip": 1.0}], ["a", "a", "b"], [1.0, 0.0, 0.5])
    >>> model.predict([{"vip": 1.0}, {"vip": 1.0}], ["a", "new"]).round(2).tolist()
    [1.0, 0.5]
    """

    def __init__(self, ridge: float = 1.0) -> None:
        self.ridge = ridge
        self._actions: tuple[str, ...] = ()
        self._model: RidgeRewardModel | None = None
        self._mean = 0.0

    @property
    def actions(self) -> tuple[str, ...]:
        return self._actions

    def fit(
        self,
        contexts: Sequence[Mapping[str, float]],
        variants: Sequence[str],
        rewards: Sequence[float],
    ) -> VariantRewardModel:
        self._actions = tuple(sorted(set(variants)))
        index = {name: i for i, name in enumerate(self._actions)}
        features = sorted({name for context in contexts for name in context})
        model = RidgeRewardModel(features, len(self._actions), self.ridge)
        self._model = model.fit(contexts, [index[v] for v in variants], rewards)
        self._mean = float(np.mean(rewards)) if len(rewards) else 0.0
        return self

    def predict(
        self, contexts: Sequence[Mapping[str, float]], variants: Sequence[str]
    ) -> np.ndarray:
        """The predicted reward of each context's variant."""
        if self._model is None:
            raise RuntimeError("the model is not fitted; call fit() first")
        index = {name: i for i, name in enumerate(self._actions)}
        all_rewards = self._model.predict(contexts)
        return np.array(
            [
                all_rewards[row, index[v]] if v in index else self._mean
                for row, v in enumerate(variants)
            ]
        )
