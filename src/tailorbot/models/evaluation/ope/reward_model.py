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
