"""Knowledge-base article recommendations: text relevance, intent, collaborative statistics
from other customers, the user's own history, and their offline evaluation.

See docs/recommendations.md.
"""

from tailorbot.models.recommend.base import Recommendation, Recommender, UserContext
from tailorbot.models.recommend.collaborative import (
    ARTICLE_EVENT_TYPES,
    NAMESPACES,
    CollaborativeStats,
    add_deltas,
    deltas_for_event,
)
from tailorbot.models.recommend.evaluation import (
    EvaluationError,
    RecsEvaluation,
    evaluate_recommendations,
)
from tailorbot.models.recommend.hybrid import (
    DEFAULT_WEIGHTS,
    INTENT_ONLY_WEIGHTS,
    HybridRecommender,
)
from tailorbot.models.recommend.text import BM25Index

__all__ = [
    "ARTICLE_EVENT_TYPES",
    "DEFAULT_WEIGHTS",
    "INTENT_ONLY_WEIGHTS",
    "NAMESPACES",
    "BM25Index",
    "CollaborativeStats",
    "EvaluationError",
    "HybridRecommender",
    "Recommendation",
    "Recommender",
    "RecsEvaluation",
    "UserContext",
    "add_deltas",
    "deltas_for_event",
    "evaluate_recommendations",
]
