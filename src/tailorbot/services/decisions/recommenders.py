"""The two article rankers of a server, with collaborative statistics kept fresh.

The personalized ranker uses every signal. The control ranker (the A/B baseline) is the same
ranker without the user's view: text relevance, intent match and what every customer shares
(each article's resolution rate, helpfulness and popularity over all customers), the
strongest ranking that is not personal. The collaborative statistics are additive counters
in the store (the stream worker adds to them as events arrive);
:meth:`SharedRecommenders.refresh` re-reads them and is called off the request path (see
:mod:`tailorbot.services.decisions.refresh`).
The same refresh picks up a newer collaborative-filtering model (``tailorbot train-recs``)
from the data directory's model registry, so a retrained model is served without a restart.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tailorbot.kb.model import KnowledgeBase
from tailorbot.models.recommend import HybridRecommender, Recommendation
from tailorbot.models.recommend.cf_training import CFLoader
from tailorbot.models.recommend.collaborative import (
    NAMESPACES,
    CollaborativeStats,
    read_counters,
)
from tailorbot.store.base import CounterStore
from tailorbot.store.watch import CounterWatch


class SharedRecommenders:
    def __init__(
        self, kb: KnowledgeBase, store: CounterStore, data_dir: str | Path | None = None
    ) -> None:
        self.kb = kb
        self.store = store
        self.data_dir = data_dir
        self._personalized = HybridRecommender(kb)
        self._control = HybridRecommender(kb)  # never given a view: global statistics only
        self._cf = CFLoader(data_dir) if data_dir is not None else None
        self._watch = CounterWatch(store, NAMESPACES)

    @property
    def cf_version(self) -> str | None:
        """The registry version of the collaborative-filtering model in use (None: none)."""
        return self._cf.version if self._cf is not None else None

    def refresh(self) -> None:
        """Swap in the current shared statistics and a newer CF model, if one was saved
        (attribute assignments: atomic)."""
        # Unchanged counters (a quiet hour, a server without feedback): keep the statistics
        # and the answers they remember. Their stamps say so without the read (4 ms of CPU
        # a second with 5,000 counters), or the read does (from_counters then answers the
        # served statistics themselves). Changed ones grow the served statistics by what was
        # added, keeping the answers whose counters did not change.
        stamps = self._watch.changed()
        if stamps is not None:
            served = self._personalized.stats
            stats = CollaborativeStats.from_counters(read_counters(self.store), previous=served)
            if stats is not served:
                self._personalized.stats = self._control.stats = stats
            self._watch.read(stamps)
        if self._cf is not None:
            model = self._cf.poll()
            if model is not None:
                self._personalized.cf = model

    def recommend(
        self,
        view: Mapping[str, Any] | None,
        message: str,
        intent: str | None,
        confidence: float,
        *,
        k: int,
        personalized: bool,
        tier: str | None = None,
        language: str | None = None,
    ) -> list[Recommendation]:
        """``tier`` and ``language`` (from the profile and the request) pick the audience."""
        ranker = self._personalized if personalized else self._control
        return ranker.recommend(
            view if personalized else None,
            message,
            intent,
            confidence,
            k,
            tier=tier,
            language=language,
        )
