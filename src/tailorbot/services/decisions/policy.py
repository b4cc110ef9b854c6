"""The response-variant policy: a contextual bandit whose statistics live in the store.

Every server process keeps its own copy of the bandit for fast selection. Learning adds the
update's sufficient statistics to the store's shared vector counters, one an arm (addition
commutes, so concurrent processes never lose an update) and to the local copy; every
``sync_s`` seconds the local copy is rebuilt from the shared sums (off the request path, by
the decision service's background refresh), which also brings in what other processes
learned.

The arms offered are the template's own variants. Each is scored on the context plus its
action features (features/context.py: this customer's memory of the variant, and their
segment's, read from the shared ``memory:segment_variant`` counters at each sync).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from tailorbot.config import Settings
from tailorbot.features.context import action_features
from tailorbot.features.memory import NS_SEGMENT_VARIANT
from tailorbot.features.segment_memory import SegmentVariantStats
from tailorbot.models.bandit import Choice, ContextualBandit, LinearThompson, LinUCB
from tailorbot.store.base import CounterStore
from tailorbot.store.watch import CounterWatch


def make_bandit(settings: Settings, features: Sequence[str]) -> ContextualBandit:
    """The bandit the settings ask for, over ``features`` of the decision context: the
    personalized policy's (:func:`~tailorbot.features.context.feature_names`) or the A/B
    control's (:data:`~tailorbot.features.context.NON_PERSONAL_KEYS`)."""
    features = list(features)
    if settings.bandit == "thompson":
        return LinearThompson(
            features, v=settings.bandit_alpha, epsilon=settings.bandit_epsilon, seed=settings.seed
        )
    return LinUCB(
        features, alpha=settings.bandit_alpha, epsilon=settings.bandit_epsilon, seed=settings.seed
    )


def serving_policy(
    settings: Settings, store: CounterStore, features: Sequence[str], name: str = "bandit"
) -> VariantPolicy:
    """The variant policy a server serves, as the settings ask: :func:`make_bandit` over
    ``features``, refreshed every ``bandit_sync_s``, its choices never reading the store
    where they are made on the event loop over a network store."""
    return VariantPolicy(
        make_bandit(settings, features),
        store,
        settings.bandit_sync_s,
        name=name,
        sync_when_stale=not settings.decisions_on_loop_over_network(),
    )


class VariantPolicy:
    """Chooses response variants and learns from rewards, sharing state through ``store``.

    ``name`` starts the counters' namespace: the personalized policy's ``bandit``, the A/B
    control's ``control``, so the two never share statistics. ``sync_when_stale``: a choice
    reads the shared statistics itself when the background refresh is overdue; ``False``
    where choices are made on the event loop over a network store (a blocking round trip
    there would hold up every request, and Redis is slow exactly when the refresh is late):
    the last statistics are served until the refresh catches up.
    """

    def __init__(
        self,
        bandit: ContextualBandit,
        store: CounterStore,
        sync_s: float = 1.0,
        name: str = "bandit",
        sync_when_stale: bool = True,
    ) -> None:
        self.bandit = bandit
        self.store = store
        self.sync_s = sync_s
        self.name = name
        self.sync_when_stale = sync_when_stale
        kind = type(bandit).__name__.lower()
        self.namespace = f"{name}:{kind}:{bandit.feature_signature()}"
        self._lock = threading.Lock()
        self._synced_at = float("-inf")
        self._segments = SegmentVariantStats()
        self._watch = CounterWatch(store, (self.namespace, NS_SEGMENT_VARIANT))
        # Local lessons (learn_locally), and how many the last rebuild had seen: one learnt
        # after a rebuild that already read its shared write counts twice until the next.
        self._lessons = 0
        self._lessons_synced = -1

    def choose(
        self,
        context: Mapping[str, float],
        arms: Sequence[str],
        arm_features: Mapping[str, Mapping[str, float]] | None = None,
    ) -> Choice:
        self._maybe_sync()
        with self._lock:
            return self.bandit.select(context, arms, arm_features=arm_features)

    def choose_for(
        self, view: Mapping[str, Any] | None, context: Mapping[str, float], arms: Sequence[str]
    ) -> tuple[Choice, dict[str, float]]:
        """The choice among ``arms`` with the customer's memory of each as action features,
        and the context to learn from (``context`` with the chosen arm's features)."""
        self._maybe_sync()
        features = action_features(view, arms, self._segments)
        with self._lock:
            choice = self.bandit.select(context, arms, arm_features=features)
        return choice, {**context, **features[choice.arm]}

    def learn(self, context: Mapping[str, float], arm: str, reward: float) -> None:
        self.store.add_vectors(self.namespace, self.statistics_delta(context, arm, reward))
        self.learn_locally(context, arm, reward)

    def statistics_delta(
        self, context: Mapping[str, float], arm: str, reward: float
    ) -> dict[str, np.ndarray]:
        """What learning from ``reward`` adds to the shared statistics (vector counters of
        :attr:`namespace`; see :meth:`learn`)."""
        return self.bandit.statistics_delta(context, arm, reward)

    def learn_locally(self, context: Mapping[str, float], arm: str, reward: float) -> None:
        """Learn in this process only, once the shared statistics hold the update."""
        with self._lock:
            self.bandit.learn_one(context, arm, reward)
            self._lessons += 1

    def sync(self) -> None:
        """Rebuild the local bandit from the shared statistics, unless neither they (their
        stamps) nor the local copy changed since the last rebuild."""
        lessons = self._lessons
        stamps = self._watch.changed()
        if stamps is None and lessons == self._lessons_synced:
            with self._lock:
                self._synced_at = time.monotonic()
            return
        vectors = self.store.vectors(self.namespace)
        counters = self.store.counters(self.namespace)  # as a store before packed ones holds them
        segments = SegmentVariantStats.from_counters(self.store.counters(NS_SEGMENT_VARIANT))
        with self._lock:
            self.bandit.load_statistics(vectors, counters)
            self._segments = segments
            self._synced_at = time.monotonic()
            self._lessons_synced = lessons
        if stamps is not None:
            self._watch.read(stamps)

    def _maybe_sync(self) -> None:
        # With sync_s > 0 the service's background refresh calls sync(); this only catches a
        # refresh that stalled (twice the period), and sync_s == 0 reloads before every choice.
        if self.sync_when_stale and time.monotonic() - self._synced_at >= 2 * self.sync_s:
            self.sync()
