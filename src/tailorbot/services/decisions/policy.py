"""The response-variant policy: a contextual bandit whose statistics live in the store.

Every server process keeps its own copy of the bandit for fast selection. Learning adds the
update's sufficient statistics to the store's shared counters (addition commutes, so
concurrent processes never lose an update) and to the local copy; every ``sync_s`` seconds the
local copy is rebuilt from the shared sums (off the request path, by the decision service's
background refresh), which also brings in what other processes learned.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence

from tailorbot.config import Settings
from tailorbot.features.context import AttributeContext, feature_names
from tailorbot.models.bandit import Choice, ContextualBandit, LinearThompson, LinUCB
from tailorbot.store.base import CounterStore


def make_bandit(settings: Settings, attributes: AttributeContext) -> ContextualBandit:
    """The bandit the settings ask for, over the decision context's features."""
    features = feature_names(attributes)
    if settings.bandit == "thompson":
        return LinearThompson(
            features, v=settings.bandit_alpha, epsilon=settings.bandit_epsilon, seed=settings.seed
        )
    return LinUCB(
        features, alpha=settings.bandit_alpha, epsilon=settings.bandit_epsilon, seed=settings.seed
    )


class VariantPolicy:
    """Chooses response variants and learns from rewards, sharing state through ``store``."""

    def __init__(self, bandit: ContextualBandit, store: CounterStore, sync_s: float = 1.0) -> None:
        self.bandit = bandit
        self.store = store
        self.sync_s = sync_s
        self.namespace = f"bandit:{type(bandit).__name__.lower()}:{bandit.feature_signature()}"
        self._lock = threading.Lock()
        self._synced_at = float("-inf")

    def choose(self, context: Mapping[str, float], arms: Sequence[str]) -> Choice:
        self._maybe_sync()
        with self._lock:
            return self.bandit.select(context, arms)

    def learn(self, context: Mapping[str, float], arm: str, reward: float) -> None:
        self.store.increment(self.namespace, self.bandit.statistics_delta(context, arm, reward))
        with self._lock:
            self.bandit.learn_one(context, arm, reward)

    def sync(self) -> None:
        """Rebuild the local bandit from the shared statistics."""
        counters = self.store.counters(self.namespace)
        with self._lock:
            self.bandit.load_statistics(counters)
            self._synced_at = time.monotonic()

    def _maybe_sync(self) -> None:
        # With sync_s > 0 the service's background refresh calls sync(); this only catches a
        # refresh that stalled (twice the period), and sync_s == 0 reloads before every choice.
        if time.monotonic() - self._synced_at >= 2 * self.sync_s:
            self.sync()
