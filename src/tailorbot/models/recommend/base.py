"""What every article recommender answers, and the slice of a user's feature view it reads.

>>> rec = Recommendation("kb-card-arrival", "Where is my card?", 1.8, ["matches intent x (0.93)"])
>>> rec.to_dict()["reasons"]
['matches intent x (0.93)']
>>> UserContext.from_view(None).personalized
False
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, NamedTuple

from tailorbot.compiled import native

# The empty mapping the recommenders share as a default and an answer: read, never changed.
EMPTY_MAPPING: Mapping[str, Any] = MappingProxyType({})


class Recommendation(NamedTuple):
    """One ranked article, with its score and the reasons for it in words.

    A named tuple, immutable as a frozen dataclass is and built in a third of its time: a
    decision builds one for each article it offers.
    """

    article_id: str
    title: str
    score: float
    reasons: list[str]
    signals: Mapping[str, float] = EMPTY_MAPPING  # weighted score components

    def to_dict(self) -> dict[str, Any]:
        return {
            "article_id": self.article_id,
            "title": self.title,
            "score": self.score,
            "reasons": list(self.reasons),
            "signals": dict(self.signals),
        }


class UserContext(NamedTuple):
    """What the recommender uses of one user's feature view (``stream.features.feature_view``).

    Kept in one place so that the view's layout is read by one function only. A named tuple,
    immutable as a frozen dataclass is, and a third cheaper to build: one is built for every
    decision.
    """

    personalized: bool = False
    tier: str | None = None
    segment: str | None = None
    language: str | None = None
    session_intent: str | None = None
    viewed: frozenset[str] = frozenset()
    helpful: frozenset[str] = frozenset()
    unhelpful: frozenset[str] = frozenset()
    resolved: frozenset[str] = frozenset()
    resolved_by_intent: Mapping[str, tuple[str, ...]] = EMPTY_MAPPING

    @classmethod
    def from_view(cls, view: Mapping[str, Any] | None) -> UserContext:
        """Read a feature view (docs/features.md); None or an empty view: not personalized.

        ``session_intent`` is the intent of the user's latest customer message, the issue a
        resolution or an article vote that follows it is about.
        """
        compiled = getattr(native(), "user_context", None)  # None: not built, or before
        # None: an empty view, or a value of a type the feature view does not make
        found = compiled(cls, view) if compiled is not None and view is not None else None
        return found if found is not None else cls.from_view_in_python(view)

    @classmethod
    def from_view_in_python(cls, view: Mapping[str, Any] | None) -> UserContext:
        """:meth:`from_view` in Python: the reference the compiled ``user_context``
        (csrc/user_context.c) is tested against, and the path for what it does not read."""
        if not view:
            return cls()
        recent = view.get("recent_intents") or []
        resolved = view.get("articles_resolved_by_intent") or {}
        # every field, in their order: tuple.__new__ skips the generated __new__'s keywords
        return tuple.__new__(
            cls,
            (
                bool(view.get("personalization", True)),
                _text(view.get("tier")),
                _text(view.get("segment")),
                _text(view.get("language")),
                _text(recent[-1]) if recent else None,
                frozenset(view.get("articles_viewed") or ()),
                frozenset(view.get("articles_helpful") or ()),
                frozenset(view.get("articles_unhelpful") or ()),
                frozenset(view.get("articles_resolved") or ()),
                {str(k): tuple(v) for k, v in dict(resolved).items()},
            ),
        )

    def helped(self) -> frozenset[str]:
        """Articles that already helped this user: marked helpful, or resolved an issue."""
        return self.helpful | self.resolved

    def basket(self) -> frozenset[str]:
        """Articles the user interacted with (viewed, helpful, resolved), less the vetoed."""
        return (self.viewed | self.helpful | self.resolved) - self.unhelpful

    def cohorts(self) -> list[tuple[str, str]]:
        """``(kind, value)`` groups of similar customers: the tier and the segment."""
        tier, segment = self.tier, self.segment  # each named-tuple read is a lookup
        out = []
        if tier:
            out.append(("tier", tier))
        if segment:
            out.append(("segment", segment))
        return out


def _text(value: Any) -> str | None:
    return str(value) if value not in (None, "") else None


class Recommender(ABC):
    """Ranks knowledge-base articles for one customer message."""

    @abstractmethod
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
        """The best ``k`` articles, best first; ``user_view`` None means not personalized.

        ``tier`` and ``language`` pick the audience (default: the view's).
        """
