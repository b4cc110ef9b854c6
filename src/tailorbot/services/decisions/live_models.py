"""What decisions are made with, kept current while the server runs.

:class:`DecisionModels` is one whole set: the intent model, the recommenders, the variant
policies, the KB's composer and their versions. :class:`LiveModels` holds the set in force and
keeps it fresh off the request path: the shared article and bandit statistics are re-read
periodically, a new live-KB version (:meth:`LiveModels.use_kb`) or a newly promoted intent
model (:class:`~tailorbot.services.decisions.model_swap.CurrentModelWatcher`) replaces the
set in one attribute assignment, so a request that took :attr:`LiveModels.current` once uses
the old set or the new one, whole.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from tailorbot._heap import freeze_long_lived
from tailorbot.config import Settings
from tailorbot.features.context import AttributeContext
from tailorbot.kb.model import KnowledgeBase
from tailorbot.metrics import Metrics
from tailorbot.models.intent.base import IntentModel
from tailorbot.services.decisions.model_swap import CurrentModelWatcher, RetrainOutcomeReader
from tailorbot.services.decisions.policy import VariantPolicy
from tailorbot.services.decisions.recommenders import SharedRecommenders
from tailorbot.services.decisions.refresh import PeriodicRefresh
from tailorbot.services.decisions.responses import ResponseComposer
from tailorbot.store.base import CounterStore

STATS_REFRESH_S = 1.0  # article statistics re-read period when bandit_sync_s is 0


@dataclass(frozen=True, slots=True)
class DecisionModels:
    """What a decision is made with: the loaded models, the KB's composer and their versions."""

    intent: IntentModel
    recommenders: SharedRecommenders
    policy: VariantPolicy
    composer: ResponseComposer
    attributes: AttributeContext
    versions: Mapping[str, str] = field(default_factory=dict)
    metadata: Mapping[str, Any] = field(default_factory=dict)  # the intent model's, as saved
    control: VariantPolicy | None = None  # the A/B control's bandit; None: a fixed variant


class LiveModels:
    """The :class:`DecisionModels` in force (``current``) and the background refreshes and
    swaps that keep it current; ``counters`` holds the shared article statistics."""

    def __init__(
        self, models: DecisionModels, counters: CounterStore, settings: Settings, metrics: Metrics
    ) -> None:
        self.current = models
        self.counters = counters
        self.settings = settings
        self.metrics = metrics
        sync_s = settings.bandit_sync_s
        # Through self.current: use_kb swaps the recommenders while the refresher runs.
        policies = [models.policy] + ([models.control] if models.control is not None else [])
        refreshers = [self._refresh_articles] + ([p.sync for p in policies] if sync_s > 0 else [])
        self._refresh = PeriodicRefresh(refreshers, sync_s or STATS_REFRESH_S)
        watcher = CurrentModelWatcher(
            settings.data_dir, models.versions.get("intent"), self._swap_intent_model
        )
        # The KB and the intent model are swapped by two background threads; the lock keeps
        # one swap from overwriting the other's (requests never take it).
        self._swap_lock = threading.Lock()
        retrain = RetrainOutcomeReader(settings.data_dir, metrics)
        self._model_watch = PeriodicRefresh(
            [watcher.refresh, retrain.refresh], settings.model_poll_s
        )

    def start(self) -> None:
        """Load the shared article statistics and keep them fresh in the background."""
        self._refresh.start()
        self._show_versions({}, self.current.versions)
        if self.settings.model_poll_s > 0:
            self._model_watch.start()

    def close(self) -> None:
        self._refresh.stop()
        self._model_watch.stop()

    def use_kb(self, kb: KnowledgeBase, version: str) -> None:
        """Serve from ``kb`` from now on (a new live-KB version): one atomic swap."""
        # The same data dir: the new set loads the collaborative-filtering model too.
        recommenders = SharedRecommenders(kb, self.counters, self.current.recommenders.data_dir)
        recommenders.refresh()
        with self._swap_lock:
            old = self.current
            self.current = replace(
                old,
                recommenders=recommenders,
                composer=ResponseComposer(kb),
                versions={**old.versions, "kb": version},
            )
        self._show_versions(old.versions, self.current.versions)

    def _refresh_articles(self) -> None:
        self.current.recommenders.refresh()

    def _swap_intent_model(self, saved: Any) -> None:
        """A new current version: one assignment, so a request sees the old set or the new."""
        with self._swap_lock:
            old = self.current
            self.current = replace(
                old,
                intent=saved.model,
                metadata=saved.metadata,  # its labels and drift reference come with it
                versions={**old.versions, "intent": saved.version},
            )
        self._show_versions(old.versions, self.current.versions)
        self.metrics.model_swaps.inc()
        freeze_long_lived()  # the new model is as long-lived as the one it replaced

    def _show_versions(self, old: Mapping[str, str], new: Mapping[str, str]) -> None:
        """``tailorbot_model_info``: 1 for each version served; a replaced one's series goes
        (one per KB version would pile up over a long run of API edits)."""
        info = self.metrics.model_info
        for kind, version in new.items():
            if old.get(kind) == version:
                continue
            if kind in old:
                info.remove(kind, old[kind])
            info.labels(kind=kind, version=version).set(1)
