"""The collaborative evidence of one recommendation, gathered once for all its candidates.

>>> from tailorbot.models.recommend.hybrid import DEFAULT_WEIGHTS
>>> stats = CollaborativeStats()
>>> gold = {"tier": "gold", "recent_intents": ["card_arrival"]}
>>> stats = stats.learn_one({"type": "resolution", "resolved": True, "article_id": "kb-card"}, gold)
>>> evidence = Evidence.gather(stats, None, UserContext.from_view(gold), "card_arrival",
...                            DEFAULT_WEIGHTS)
>>> sorted(evidence.rates), evidence.rates["kb-card"].resolution.group
(['kb-card'], ('tier', 'gold'))
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

from tailorbot.models.recommend.base import EMPTY_MAPPING, UserContext
from tailorbot.models.recommend.collaborative import ArticleEvidence, CollaborativeStats
from tailorbot.models.recommend.item_knn import ItemKNN

# Collaborative-filtering candidates: the articles most similar to the user's basket.
CF_CANDIDATES = 10


class Evidence(NamedTuple):
    """Collaborative evidence for one request, gathered once for all articles (a named
    tuple: built for every decision, in a third of a frozen dataclass's time)."""

    rates: Mapping[str, ArticleEvidence] = EMPTY_MAPPING
    links: Mapping[str, tuple[float, str]] = EMPTY_MAPPING
    popularity: Mapping[str, float] = EMPTY_MAPPING
    similar: Mapping[str, float] = EMPTY_MAPPING  # item-kNN scores

    @classmethod
    def gather(
        cls,
        stats: CollaborativeStats | None,
        cf: ItemKNN | None,
        user: UserContext,
        intent: str | None,
        weights: Mapping[str, float],
    ) -> Evidence:
        """What ``stats`` and ``cf`` know about ``user``'s issue of ``intent``, for the
        signals ``weights`` counts (a zero weight: not gathered)."""
        similar: Mapping[str, float] = EMPTY_MAPPING
        if cf is not None and user.personalized and weights["item_knn"]:
            # The strongest few: the tail cannot reach the top k, and each costs a scoring.
            similar = cf.most_similar(user.basket(), CF_CANDIDATES)
        if stats is None:
            return cls(similar=similar)
        groups = user.cohorts()
        wants_rates = intent and (
            weights["segment_resolution_rate"] or weights["segment_helpfulness"]
        )
        wants_links = user.personalized and weights["cooccurrence"]
        return cls(
            stats.evidence(intent, groups) if wants_rates and intent else EMPTY_MAPPING,
            stats.cooccurrence_map(user.helped()) if wants_links else EMPTY_MAPPING,
            stats.popularity_map(groups) if weights["popularity"] else EMPTY_MAPPING,
            similar,
        )
