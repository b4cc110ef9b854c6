"""What feedback means: the helpful signal for the reward, and the events it is logged as.

Event ids derive from the decision id, so a retried feedback re-sends the same events and the
stream processor counts them once.

>>> from tailorbot.services.decisions.schemas import FeedbackRequest
>>> request = FeedbackRequest(decision_id="d1", rating=5, clicked_article_id="a1")
>>> helpful_signal(request, offered=["a1", "a2"])
True
>>> decision = {"user_id": "u1", "session_id": "s1", "variant": "concise", "articles": ["a1"]}
>>> events = feedback_events(request, decision)
>>> [e["event_id"] for e in events], events[-1]["metadata"]
(['d1-click', 'd1-rating'], {'decision_id': 'd1', 'variant': 'concise', 'article': 'a1'})
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tailorbot.events.codec import now_iso
from tailorbot.services.decisions.schemas import FeedbackRequest


def helpful_signal(request: FeedbackRequest, offered: list[str]) -> bool | None:
    if request.helpful_article_id is not None:
        return True
    if request.unhelpful_article_id is not None:
        return False
    if request.clicked_article_id in offered:
        return True  # a click on an offered article; a click elsewhere says nothing of ours
    return None


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
                "event_id": f"{prefix}-click",
                "article_id": request.clicked_article_id,
            }
        )
    if request.helpful_article_id is not None:
        events.append(
            {
                **base,
                "type": "article_feedback",
                "event_id": f"{prefix}-helpful",
                "article_id": request.helpful_article_id,
                "helpful": True,
            }
        )
    if request.unhelpful_article_id is not None:
        events.append(
            {
                **base,
                "type": "article_feedback",
                "event_id": f"{prefix}-unhelpful",
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
