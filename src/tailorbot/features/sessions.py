"""Session summaries: one flat list per session, order-independent in its events.

A flat list (not a dict) because a user's record holds many of them and the worker loads and
writes records at every batch: fewer keys and containers make them cheaper to (de)serialize.
The fields, by index:

==============  ================================================================
``FIRST``       min event time
``LAST``        max event time
``STARTED``     min ``session_started`` time, or None
``ENDED``       max ``session_ended`` time, or None
``INTENT_AT``   time of the first customer intent (event-time order, ties by name)
``INTENT``      that intent (None until one is seen)
``OUTCOME_AT``  time of the latest resolution (event-time order, ties by value)
``RESOLVED``    its ``resolved`` flag (None until one is seen)
``ARTICLE``     its ``article_id``, or None
``HANDOFFS``    how many handoff events
==============  ================================================================

>>> s = new_session(100.0)
>>> observe(s, 90.0); observe(s, 130.0)
>>> start(s), end(s)
(90.0, 130.0)
>>> set_outcome(s, 120.0, True, "kb-1"); s[RESOLVED], resolution(s)
(True, ('', 'kb-1'))
"""

from __future__ import annotations

from typing import Any

Session = list[Any]

FIRST, LAST, STARTED, ENDED, INTENT_AT, INTENT, OUTCOME_AT, RESOLVED, ARTICLE, HANDOFFS = range(10)


def new_session(ts: float) -> Session:
    return [ts, ts, None, None, None, None, None, None, None, 0]


def observe(s: Session, ts: float) -> None:
    """Widen the session's first..last span to cover ``ts``."""
    if ts < s[FIRST]:
        s[FIRST] = ts
    elif ts > s[LAST]:
        s[LAST] = ts


def mark_started(s: Session, ts: float) -> None:
    if s[STARTED] is None or ts < s[STARTED]:
        s[STARTED] = ts


def mark_ended(s: Session, ts: float) -> None:
    if s[ENDED] is None or ts > s[ENDED]:
        s[ENDED] = ts


def offer_intent(s: Session, ts: float, intent: str) -> None:
    """Keep the earliest customer intent (ties: the smallest name)."""
    if s[INTENT] is None or (ts, intent) < (s[INTENT_AT], s[INTENT]):
        s[INTENT_AT], s[INTENT] = ts, intent


def set_outcome(s: Session, ts: float, resolved: bool, article: str | None) -> None:
    """Keep the latest resolution (ties: the largest ``(resolved, article or "")``)."""
    if s[RESOLVED] is None or (ts, resolved, article or "") > (
        s[OUTCOME_AT],
        s[RESOLVED],
        s[ARTICLE] or "",
    ):
        s[OUTCOME_AT], s[RESOLVED], s[ARTICLE] = ts, resolved, article


def start(s: Session) -> float:
    """The earliest session_started time, else the session's first event time."""
    return s[FIRST] if s[STARTED] is None else s[STARTED]


def end(s: Session) -> float:
    """The latest session_ended time, else the session's last event time."""
    return s[LAST] if s[ENDED] is None else s[ENDED]


def resolution(s: Session) -> tuple[str, str] | None:
    """``(intent or "", article_id)`` when the session's outcome is resolved with an article."""
    if not s[RESOLVED] or s[ARTICLE] is None:
        return None
    return (s[INTENT] or "", s[ARTICLE])
