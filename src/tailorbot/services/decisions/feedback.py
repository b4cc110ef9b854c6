"""What feedback means: the helpful signal for the reward, and the events it is logged as.

Event ids derive from the decision id (and the article, for article signals), so a retried
feedback re-sends the same events and the stream processor counts them once, while a click on
another article of the same decision is an event of its own.

>>> from tailorbot.services.decisions.schemas import FeedbackRequest
>>> request = FeedbackRequest(decision_id="d1", rating=5, clicked_article_id="a1")
>>> helpful_signal(request, offered=["a1", "a2"])
True
>>> decision = {"user_id": "u1", "session_id": "s1", "variant": "concise", "articles": ["a1"]}
>>> events = feedback_events(request, decision)
>>> [e["event_id"] for e in events]
['d1-click-d2763b371316', 'd1-rating']
>>> events[-1]["metadata"]
{'decision_id': 'd1', 'variant': 'concise', 'article': 'a1'}
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Mapping
from typing import Any

from tailorbot.errors import Problem
from tailorbot.events.codec import now_iso
from tailorbot.kb.model import KnowledgeBase
from tailorbot.services.decisions.schemas import FeedbackRequest, FeedbackResponse
from tailorbot.store.base import FeedbackMark


def helpful_signal(request: FeedbackRequest, offered: Collection[str]) -> bool | None:
    """What the article signals say of the decision: only its own articles count (a vote
    or a click on an article it did not offer says nothing of ours)."""
    if request.helpful_article_id in offered:
        return True
    if request.unhelpful_article_id in offered:
        return False
    if request.clicked_article_id in offered:
        return True
    return None


def offered_articles(decision: Mapping[str, Any]) -> frozenset[str]:
    """The articles a decision showed (the one its reply is about is one of them)."""
    return frozenset(str(a) for a in decision.get("articles") or ())


def decision_metadata(decision_id: str, decision: Mapping[str, Any]) -> dict[str, str]:
    """What the stream worker needs to credit the outcome (features/memory.py): the variant
    shown, the article the reply was about, and the A/B arm that chose them (the shared
    segment counters learn from the personalized arm only)."""
    meta = {"decision_id": decision_id}
    if decision.get("arm"):
        meta["arm"] = str(decision["arm"])
    if decision.get("variant"):
        meta["variant"] = str(decision["variant"])
    articles = decision.get("articles") or []
    article = decision.get("reply_article") or (articles[0] if articles else None)
    if article:
        meta["article"] = str(article)
    return meta


def feedback_events(
    request: FeedbackRequest, decision: Mapping[str, Any], received_at: str | None = None
) -> list[dict]:
    """The events a feedback is logged as, dated ``received_at`` (default now). The handler
    dates them when the feedback arrived, before it read the decision: an erasure of the user
    after that read drops them (an event dated before an erasure never counts), even when they
    reach the log after it."""
    base = {
        "user_id": decision["user_id"],
        "session_id": decision["session_id"],
        "timestamp": received_at or now_iso(),
        "channel": decision.get("channel", "chat"),
        "metadata": decision_metadata(request.decision_id, decision),
    }
    prefix = request.decision_id
    events: list[dict] = []
    if request.clicked_article_id is not None:
        events.append(
            {
                **base,
                "type": "article_viewed",
                "event_id": article_event_id(prefix, "click", request.clicked_article_id),
                "article_id": request.clicked_article_id,
            }
        )
    if request.helpful_article_id is not None:
        events.append(
            {
                **base,
                "type": "article_feedback",
                "event_id": article_event_id(prefix, "helpful", request.helpful_article_id),
                "article_id": request.helpful_article_id,
                "helpful": True,
            }
        )
    if request.unhelpful_article_id is not None:
        events.append(
            {
                **base,
                "type": "article_feedback",
                "event_id": article_event_id(prefix, "unhelpful", request.unhelpful_article_id),
                "article_id": request.unhelpful_article_id,
                "helpful": False,
            }
        )
    if request.rating is not None:
        events.append(
            {**base, "type": "rating", "event_id": f"{prefix}-rating", "score": request.rating}
        )
    if request.resolved is not None:
        article = request.helpful_article_id or request.clicked_article_id
        events.append(
            {
                **base,
                "type": "resolution",
                "event_id": f"{prefix}-resolution",
                "resolved": request.resolved,
                "article_id": article if request.resolved else None,
            }
        )
    return events


def article_event_id(prefix: str, kind: str, article_id: str) -> str:
    """One id per decision, signal and article: a retry is the same event, another article
    another event. The article goes in as a short digest (ids stay under 128 characters)."""
    digest = hashlib.blake2b(article_id.encode(), digest_size=6).hexdigest()
    return f"{prefix}-{kind}-{digest}"


def unknown_articles(
    request: FeedbackRequest, offered: Collection[str], kb: KnowledgeBase
) -> list[Problem]:
    """The request's article ids the knowledge base does not have (each would become a key
    of the shared counters; a 422), but for those the decision offered: an article deleted
    since is still what the customer was shown, and already a key."""
    return [
        Problem(None, name, f"unknown article {value!r}: not in the knowledge base")
        for name in ("helpful_article_id", "unhelpful_article_id", "clicked_article_id")
        if (value := getattr(request, name)) is not None
        and value not in offered
        and kb.article(value) is None
    ]


def not_applied(request: FeedbackRequest) -> FeedbackResponse:
    """The answer of a feedback that teaches nothing (a repeat, a later signal, no outcome)."""
    return FeedbackResponse(decision_id=request.decision_id, applied=False, reward=None)


def has_mark(stored: Mapping[str, Mapping[str, Any]], mark: FeedbackMark) -> bool:
    """Whether the decisions read (``DecisionStore.get_many``) hold ``mark`` as written."""
    return (stored.get(mark.decision_id) or {}).get("feedback") == dict(mark.feedback)
