"""The two article rankers of a server, with collaborative statistics kept fresh.

The personalized ranker uses every signal; the control ranker (the A/B baseline) only text
relevance and intent match. The collaborative statistics are additive counters in the store
(the stream worker adds to them as events arrive); :meth:`SharedRecommenders.refresh` re-reads
them and is called off the request path (see :mod:`tailorbot.services.decisions.refresh`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tailorbot.kb.model import KnowledgeBase
from tailorbot.models.recommend import HybridRecommender, Recommendation
from tailorbot.models.recommend.collaborative import CollaborativeStats
from tailorbot.store.base import CounterStore


class SharedRecommenders:
    def __init__(self, kb: KnowledgeBase, store: CounterStore) -> None:
        self.kb = kb
        self.store = store
        self._personalized = HybridRecommender(kb)
        self._control = HybridRecommender.intent_only(kb)

    def refresh(self) -> None:
        """Swap in the current shared statistics (one attribute assignment: atomic)."""
        self._personalized.stats = CollaborativeStats.load(self.store)

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
