"""Per-user feature state and its incremental, idempotent update.

The state is a plain JSON-ready dict (stored in :class:`~tailorbot.store.base.FeatureRecord`).
Every part of it is an *order-independent summary* of the applied events: sorted timestamp
lists, minima and maxima, top-N sets chosen by an event-time key, sums, and a CSAT EWMA whose
fold is deferred until no earlier rating can still arrive. So applying the same events in any
arrival order gives the same state, as far as :func:`~tailorbot.features.view.feature_view`
can tell, as long as no event is older than the user's *cut* (see below). docs/features.md
defines every feature exactly; this module is its implementation.

Memory is bounded per user: per-event detail is kept only for events newer than the **cut**
``max(newest − (30 d + lateness_s), cap floor)`` where ``newest`` is the user's newest event
time, and a hard cap per structure raises the cap floor when it is exceeded. An event at or
below the cut is not applied (it is counted in ``late``): its id may already have been
forgotten, so applying it could count it twice.

>>> s = new_state()
>>> ev = {"type": "rating", "event_id": "e1", "user_id": "u1", "session_id": "s1",
...       "timestamp": "2026-01-01T10:00:00Z", "score": 4}
>>> apply_event(s, ev, FeatureParams()), apply_event(s, ev, FeatureParams())
(True, False)
>>> s["csat_sum"], s["csat_n"]
(4, 1)
"""

from __future__ import annotations

import math
from bisect import bisect_right, insort
from collections.abc import Callable, Iterable
from typing import Any

from tailorbot.events.codec import event_epoch
from tailorbot.events.schema import ANNOTATION_TYPES
from tailorbot.features import memory
from tailorbot.features import sessions as sess
from tailorbot.features.params import RETENTION_S, FeatureParams
from tailorbot.store.base import DedupeDelta
from tailorbot.store.state_blob import DEDUPE_KEY  # stored apart: no feature reads it

STATE_VERSION = 1

# Outcomes of applying one event.
APPLIED = "applied"
DUPLICATE = "duplicate"
LATE = "late"
ANNOTATION = "annotation"  # an event about another event (a label): not user activity

# Memory bounds (per user). Exceeding MAX_EVENTS or MAX_RATINGS raises the cut to the newest
# evicted timestamp, so that exactly-once still holds; the other caps only forget.
MAX_EVENTS = 10_000  # retained event ids / timestamps
MAX_RATINGS = 1_000  # retained (not yet folded) ratings
MAX_SESSIONS = 1_000  # retained session summaries
MAX_ARTICLES = 200  # viewed articles, and articles with feedback
MAX_CHANNELS = 32  # distinct channels counted
MAX_RESOLVED_INTENTS = 100  # intents in the folded resolved-articles map
MAX_RESOLVED_PER_INTENT = 50  # articles per intent there
BOT_TEXT_CHARS = 500  # of the newest bot message, kept to read a reply in its context
# Eviction drops to this share of a cap, so that it runs rarely.
EVICT_TO = 0.9
# Expired detail is dropped lazily, each time the newest event time advanced this much.
PRUNE_EVERY_S = 3600.0

State = dict[str, Any]
Session = sess.Session


def new_state() -> State:
    """An empty state; keys are described in docs/features.md ("State layout")."""
    return {
        "v": STATE_VERSION,
        "alpha": None,  # CSAT EWMA weight, fixed by the first applied event
        "newest": None,  # max event time applied
        "first": None,  # min event time applied
        "cut_cap": None,  # cut raised by a cap eviction
        "pruned_at": None,  # newest event time at the last prune
        "late": 0,  # events not applied because at or below the cut
        "n": 0,  # events applied
        "n_cm": 0,  # customer messages applied
        DEDUPE_KEY: {},  # "seen": event_id -> event time, for events above the cut
        "ts": [],  # sorted event times above the cut
        "cm_ts": [],  # sorted customer-message times above the cut
        "cm_intent": [],  # their intents (None when absent), parallel to cm_ts
        "intents": [],  # last N customer intents: sorted [time, intent]
        "bot": None,  # the newest bot message: [time, session_id, text]
        "ratings": [],  # ratings above the cut, not yet folded: sorted [time, score]
        "ewma": None,  # CSAT EWMA over the folded ratings
        "csat_sum": 0,
        "csat_n": 0,
        "sessions": {},  # session_id -> summary (a flat list, see stream/sessions.py)
        "resolved": {},  # folded sessions: intent ("" for none) -> {article_id: sessions}
        "views": {},  # article_id -> newest view time
        "feedback": {},  # article_id -> newest [time, helpful]
        "channels": {},  # channel -> [events, newest time]
        **memory.new_memory(),  # outcomes per variant and article (features/memory.py)
    }


def cut_of(state: State, params: FeatureParams) -> float | None:
    """Events at or below this time are not applied (None: no event yet)."""
    newest = state["newest"]
    if newest is None:
        return None
    cut = newest - (RETENTION_S + params.lateness_s)
    cap = state["cut_cap"]
    return cap if cap is not None and cap > cut else cut


def apply_outcome(
    state: State, event: dict[str, Any], params: FeatureParams, epoch: float | None = None
) -> str:
    """Apply one decoded event in place; return APPLIED, DUPLICATE, LATE or ANNOTATION.

    ``epoch`` is the event's timestamp in epoch seconds when the caller parsed it already.
    """
    if event["type"] in ANNOTATION_TYPES:
        return ANNOTATION
    ts = event_epoch(event) if epoch is None else epoch
    horizon = RETENTION_S + params.lateness_s
    newest = state["newest"]
    if newest is not None:
        cut = newest - horizon
        cap = state["cut_cap"]
        if ts <= cut or (cap is not None and ts <= cap):
            state["late"] += 1
            return LATE
    seen = state[DEDUPE_KEY]
    event_id = event["event_id"]
    if event_id in seen:
        return DUPLICATE
    seen[event_id] = ts
    if newest is None:
        state["alpha"] = params.csat_ewma_alpha
        state["first"] = state["newest"] = state["pruned_at"] = newest = ts
    elif ts > newest:
        state["newest"] = newest = ts
    elif ts < state["first"]:
        state["first"] = ts
    insort(state["ts"], ts)
    state["n"] += 1
    _count_channel(state["channels"], event.get("channel") or "chat", ts)
    session = _session(state, event["session_id"], ts, newest - horizon)
    handler = _HANDLERS.get(event["type"])
    if handler is not None:
        handler(state, session, event, ts, params)
    if (
        newest - state["pruned_at"] >= PRUNE_EVERY_S
        or len(state["ts"]) > MAX_EVENTS
        or len(state["ratings"]) > MAX_RATINGS
        or len(state["sessions"]) > MAX_SESSIONS
    ):
        _maintain(state, params)
    return APPLIED


def apply_event(state: State, event: dict[str, Any], settings_or_params: Any) -> bool:
    """Apply one decoded event; False when it was not applied (already seen, or too late)."""
    return apply_outcome(state, event, FeatureParams.of(settings_or_params)) == APPLIED


def recompute(events: Iterable[dict[str, Any]], settings_or_params: Any = None) -> State:
    """From-scratch state: apply ``events`` in event-time order (ties by event id)."""
    params = FeatureParams.of(settings_or_params)
    keyed = sorted(((event_epoch(e), e["event_id"], e) for e in events), key=lambda k: k[:2])
    state = new_state()
    for ts, _, event in keyed:
        apply_outcome(state, event, params, ts)
    return state


def dedupe_change(state: State, held: int, added: dict[str, float]) -> DedupeDelta:
    """How the state's dedupe ids changed since it held ``held`` of them, given the ids its
    applied events ``added``: when fewer are left than that, some were forgotten (below the
    cut, :func:`prune`), all of them older than every id left, which sets the floor.

    >>> s = new_state()
    >>> ev = {"type": "rating", "event_id": "e1", "user_id": "u1", "session_id": "s1",
    ...       "timestamp": "2026-01-01T10:00:00Z", "score": 4}
    >>> _ = apply_event(s, ev, FeatureParams())
    >>> dedupe_change(s, 0, {"e1": 1767261600.0})
    DedupeDelta(added={'e1': 1767261600.0}, floor=None)
    >>> dedupe_change(s, 2, {})  # it held two, one is left: the other was older
    DedupeDelta(added={}, floor=1767261600.0)
    """
    ids = state[DEDUPE_KEY]
    if len(ids) >= held + len(added):
        return DedupeDelta(added)
    return DedupeDelta(added, min(ids.values(), default=math.inf))


# --- reading helpers shared with the feature view ---------------------------------------


def ewma(start: float | None, alpha: float, ratings: Iterable[list[Any]]) -> float | None:
    """Fold ``[time, score]`` ratings (in event-time order) into an EWMA."""
    value = start
    for rating in ratings:
        score = rating[1]
        value = score if value is None else alpha * score + (1.0 - alpha) * value
    return value


# --- per-type updates -------------------------------------------------------------------

Handler = Callable[[State, Session, dict[str, Any], float, FeatureParams], None]


def _on_session_started(state: State, s: Session, ev: dict[str, Any], ts: float, p: Any) -> None:
    sess.mark_started(s, ts)


def _on_session_ended(state: State, s: Session, ev: dict[str, Any], ts: float, p: Any) -> None:
    sess.mark_ended(s, ts)


def _on_message(state: State, s: Session, ev: dict[str, Any], ts: float, p: FeatureParams) -> None:
    if ev.get("role") == "bot":
        # the text's end: where a bot's question usually is; ties by content (any order)
        newest = [ts, ev["session_id"], ev["text"][-BOT_TEXT_CHARS:]]
        if state.get("bot") is None or newest > state["bot"]:  # records older than the key
            state["bot"] = newest
        return
    if ev.get("role") != "customer":
        return
    state["n_cm"] += 1
    intent = ev.get("intent")
    times = state["cm_ts"]
    at = bisect_right(times, ts)
    times.insert(at, ts)
    state["cm_intent"].insert(at, intent)
    if intent:
        recent = state["intents"]
        insort(recent, [ts, intent])
        if len(recent) > p.recent_intents:
            del recent[: len(recent) - p.recent_intents]
        sess.offer_intent(s, ts, intent)


def _on_article_viewed(state: State, s: Session, ev: dict[str, Any], ts: float, p: Any) -> None:
    _keep_newest(state["views"], ev["article_id"], ts)


def _on_article_feedback(state: State, s: Session, ev: dict[str, Any], ts: float, p: Any) -> None:
    _keep_newest(state["feedback"], ev["article_id"], [ts, bool(ev["helpful"])])
    memory.record_outcome(state, ev, ts)


def _keep_newest(by_article: dict[str, Any], article: str, value: Any) -> None:
    """Keep the newest ``value`` per article (values compare by time first); past
    ``MAX_ARTICLES`` the oldest article is dropped, ties broken by id (order-independent)."""
    old = by_article.get(article)
    if old is None or value > old:
        by_article[article] = value
        if len(by_article) > MAX_ARTICLES:
            del by_article[min(by_article, key=lambda a: (by_article[a], a))]


def _on_rating(state: State, s: Session, ev: dict[str, Any], ts: float, p: Any) -> None:
    score = int(ev["score"])
    insort(state["ratings"], [ts, score])
    state["csat_sum"] += score
    state["csat_n"] += 1
    memory.record_outcome(state, ev, ts)


def _on_resolution(state: State, s: Session, ev: dict[str, Any], ts: float, p: Any) -> None:
    sess.set_outcome(s, ts, bool(ev["resolved"]), ev.get("article_id"))
    memory.record_outcome(state, ev, ts)


def _on_handoff(state: State, s: Session, ev: dict[str, Any], ts: float, p: Any) -> None:
    s[sess.HANDOFFS] += 1


_HANDLERS: dict[str, Handler] = {
    "session_started": _on_session_started,
    "session_ended": _on_session_ended,
    "message": _on_message,
    "article_viewed": _on_article_viewed,
    "article_feedback": _on_article_feedback,
    "rating": _on_rating,
    "resolution": _on_resolution,
    "handoff": _on_handoff,
}


# --- shared parts of every event ----------------------------------------------------------


def _count_channel(channels: dict[str, list[float]], channel: str, ts: float) -> None:
    entry = channels.get(channel)
    if entry is None:
        if len(channels) >= MAX_CHANNELS:
            return
        channels[channel] = [1, ts]
        return
    entry[0] += 1
    if ts > entry[1]:
        entry[1] = ts


def _session(state: State, session_id: str, ts: float, horizon_cut: float) -> Session:
    sessions = state["sessions"]
    session = sessions.get(session_id)
    if session is not None and session[sess.LAST] <= horizon_cut:
        # Expired but not pruned yet: what a prune would have done, so timing cannot matter.
        _fold_session(state["resolved"], session)
        session = None
    if session is None:
        session = sessions[session_id] = sess.new_session(ts)
    else:
        sess.observe(session, ts)
    return session


def _fold_session(resolved: dict[str, dict[str, int]], session: Session) -> None:
    found = sess.resolution(session)
    if found is None:
        return
    intent, article = found
    articles = resolved.setdefault(intent, {})
    articles[article] = articles.get(article, 0) + 1
    if len(articles) > MAX_RESOLVED_PER_INTENT:
        del articles[min(articles, key=lambda a: (articles[a], a))]
    if len(resolved) > MAX_RESOLVED_INTENTS:
        del resolved[min(resolved, key=lambda i: (sum(resolved[i].values()), i))]


# --- bounding memory ----------------------------------------------------------------------


def _maintain(state: State, params: FeatureParams) -> None:
    """Enforce the caps; drop expired detail (checked once per hour of event time)."""
    times, ratings = state["ts"], state["ratings"]
    capped = False
    if len(times) > MAX_EVENTS:
        _raise_cap_cut(state, times[len(times) - int(MAX_EVENTS * EVICT_TO) - 1])
        capped = True
    if len(ratings) > MAX_RATINGS:
        _raise_cap_cut(state, ratings[len(ratings) - int(MAX_RATINGS * EVICT_TO) - 1][0])
        capped = True
    if len(state["sessions"]) > MAX_SESSIONS:
        _evict_sessions(state)
    newest = state["newest"]
    if capped or times[0] <= newest - params.horizon_s:
        prune(state, params)
    else:
        state["pruned_at"] = newest


def _raise_cap_cut(state: State, cut: float) -> None:
    if state["cut_cap"] is None or cut > state["cut_cap"]:
        state["cut_cap"] = cut


def _evict_sessions(state: State) -> None:
    sessions = state["sessions"]
    oldest = sorted(sessions, key=lambda sid: (sessions[sid][sess.LAST], sid))
    for session_id in oldest[: len(sessions) - int(MAX_SESSIONS * EVICT_TO)]:
        _fold_session(state["resolved"], sessions.pop(session_id))


def prune(state: State, settings_or_params: Any) -> None:
    """Drop (or fold) the detail at or below the cut. Never changes what the view shows."""
    params = FeatureParams.of(settings_or_params)
    cut = cut_of(state, params)
    if cut is None:
        return
    times = state["ts"]
    k = bisect_right(times, cut)
    if k:
        del times[:k]
        state[DEDUPE_KEY] = {e: t for e, t in state[DEDUPE_KEY].items() if t > cut}
    cm_times = state["cm_ts"]
    k = bisect_right(cm_times, cut)
    if k:
        del cm_times[:k]
        del state["cm_intent"][:k]
    ratings = state["ratings"]
    k = bisect_right(ratings, cut, key=lambda r: r[0])
    if k:
        state["ewma"] = ewma(state["ewma"], state["alpha"], ratings[:k])
        del ratings[:k]
    memory.fold_until(state, cut)
    horizon_cut = state["newest"] - params.horizon_s
    sessions = state["sessions"]
    for session_id in [sid for sid, s in sessions.items() if s[sess.LAST] <= horizon_cut]:
        _fold_session(state["resolved"], sessions.pop(session_id))
    state["pruned_at"] = state["newest"]
