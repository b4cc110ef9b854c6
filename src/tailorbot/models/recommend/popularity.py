"""The non-personalized popularity baseline: the articles that helped most customers.

Ranks every article by how often it helped anyone (resolutions naming it and helpful votes,
any intent: ``CollaborativeStats.popularity_map`` over all customers), the same list for
every message and every user, filtered by audience. The floor any recommender must beat.

>>> from tailorbot.kb.model import Article, KnowledgeBase
>>> kb = KnowledgeBase([Article(id=i, title=i, body="b", intents=["x"]) for i in ("a", "b")])
>>> stats = CollaborativeStats()
>>> stats = stats.learn_one({"type": "resolution", "resolved": True, "article_id": "b"}, None)
>>> [r.article_id for r in PopularityRecommender(kb, stats).recommend(None, "hi", "x", 1.0)]
['b']
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tailorbot.models.recommend.base import Recommendation, Recommender
from tailorbot.models.recommend.collaborative import CollaborativeStats


class PopularityRecommender(Recommender):
    """Most helpful articles overall; ``stats`` may be replaced (or updated) at any time."""

    def __init__(self, kb: Any, stats: CollaborativeStats) -> None:
        self.kb = kb
        self.stats = stats

    def recommend(
        self,
        user_view: Mapping[str, Any] | None,
        message: str,
        intent: str | None,
        intent_confidence: float,
        k: int = 3,
        *,
        tier: str | None = None,
        language: str | None = None,
    ) -> list[Recommendation]:
        popular = self.stats.popularity_map([])
        ranked = sorted(popular.items(), key=lambda item: (-item[1], item[0]))
        out = []
        for article_id, score in ranked:
            article = self.kb.article(article_id)
            if article is None or not article.audience.matches(tier, language):
                continue
            out.append(Recommendation(article_id, article.title, round(score, 6), ["popular"], {}))
            if len(out) == k:
                break
        return out
