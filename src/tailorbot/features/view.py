"""The served feature view of one user.

:func:`feature_view` turns a stored state (plus the user's profile) into the JSON-ready record
served by ``GET /v1/users/{id}/features`` and read by the decision service. Windowed features
are evaluated *as of* ``now``; docs/features.md defines every field exactly.

>>> from tailorbot.store.base import FeatureRecord
>>> from tailorbot.features.state import apply_event, new_state
>>> state = new_state()
>>> _ = apply_event(state, {"type": "message", "event_id": "e1", "user_id": "u1",
...     "session_id": "s1", "timestamp": "2026-01-01T10:00:00Z", "role": "customer",
...     "text": "hi", "intent": "card_arrival"}, None)
>>> record = FeatureRecord("u1", state, partition=0, offset=0, event_time=0.0, updated_at=0.0)
>>> view = feature_view(record, {"tier": "gold"}, now=1767263400.0)  # 10:30Z
>>> view["events_1h"], view["events_24h"], view["recent_intents"], view["segment"]
(1, 1, ['card_arrival'], 'vip')
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tailorbot.compiled import native
from tailorbot.events.profile import consents_to_personalization
from tailorbot.features.memory import DECAY_PER_S, memory_view
from tailorbot.features.params import RETENTION_S
from tailorbot.features.segments import DEFAULT_RULES, SEGMENTS, SegmentRules
from tailorbot.features.session_summary import session_summary
from tailorbot.features.state import ewma, new_state
from tailorbot.features.windows import (
    EVENT_WINDOWS,
    SESSION_WINDOWS,
    counts_in_windows,
    window_slice,
)
from tailorbot.store.base import FeatureRecord

DEFAULT_TIER = "standard"  # a profile without a tier
RATE_WINDOW_S = SESSION_WINDOWS["30d"]
# the view names its windows' counts one by one (events_1h...): unpacking these widths
# into as many names fails at once if a window is added here and not there
EVENT_WIDTHS = tuple(EVENT_WINDOWS.values())
SESSION_WIDTHS = tuple(SESSION_WINDOWS.values())


def feature_view(
    record: FeatureRecord | None,
    profile: Mapping[str, Any] | None,
    now: float,
    rules: SegmentRules = DEFAULT_RULES,
) -> dict[str, Any]:
    """The user's features as of ``now`` (epoch seconds).

    Without personalization consent the view carries the profile only: every behavioural
    feature reads as for a user without events.
    """
    personalized, state = _consented_state(record, profile)
    compiled = getattr(native(), "feature_view", None)  # None: not built, or before
    # None: a value of a type the stream worker (or the profile store) does not write, or
    # rules of a subclass: the Python reference reads them
    found = None
    if compiled is not None and type(rules) is SegmentRules:
        values = _DEFAULT_RULE_VALUES if rules is DEFAULT_RULES else _rule_values(rules)
        found = compiled(state, record, profile, now, personalized, _CONSTANTS, values)
    if found is None:
        return view_in_python(record, state, profile, now, personalized, rules)
    return found


# The view's keys, in its order: what view_in_python writes, and the compiled feature_view
# (csrc/view.c) in one call.
VIEW_NAMES = (
    "user_id",
    "as_of",
    "personalization",
    "events_total",
    *(f"events_{name}" for name in EVENT_WINDOWS),
    "customer_messages_total",
    *(f"customer_messages_{name}" for name in EVENT_WINDOWS),
    "first_seen",
    "last_event_time",
    "time_since_last_contact_s",
    "recent_intents",
    "intent_counts_30d",
    "top_intent_30d",
    "last_bot_message",
    "csat_count",
    "csat_avg",
    "csat_ewma",
    *(f"sessions_{name}" for name in SESSION_WINDOWS),
    "resolution_rate_30d",
    "handoff_rate_30d",
    "unresolved_streak",
    "avg_session_length_s_30d",
    "articles_viewed",
    "articles_helpful",
    "articles_unhelpful",
    "articles_resolved",
    "articles_resolved_by_intent",
    "variant_rewards",
    "article_rewards",
    "preferred_channel",
    "late_events",
    "history_capped",
    "name",
    "tier",
    "language",
    "region",
    "products",
    "attributes",
    "segments",
    "segment",
    "state_event_time",
    "state_updated_at",
)
DEFAULT_LANGUAGE = "en"  # a profile without a language (events.profile.UserProfile's default)
# What the compiled feature_view reads besides the user (its order is view.c's).
_CONSTANTS = (
    VIEW_NAMES,
    EVENT_WIDTHS,
    SESSION_WIDTHS,
    RATE_WINDOW_S,
    float(RETENTION_S),
    DECAY_PER_S,
    DEFAULT_TIER,
    DEFAULT_LANGUAGE,
)


def _rule_values(rules: SegmentRules) -> tuple[Any, ...]:
    """The segment rules' thresholds as the compiled feature_view reads them (view.c)."""
    return (
        rules.at_risk_csat,
        rules.at_risk_unresolved_streak,
        rules.vip_tiers,
        rules.frequent_sessions_7d,
        rules.new_for_s,
        SEGMENTS,
    )


_DEFAULT_RULE_VALUES = _rule_values(DEFAULT_RULES)


def view_in_python(
    record: FeatureRecord | None,
    state: dict[str, Any],
    profile: Mapping[str, Any] | None,
    now: float,
    personalized: bool,
    rules: SegmentRules = DEFAULT_RULES,
) -> dict[str, Any]:
    """The view of ``state`` (the record's, or a new one without consent) as of ``now``: the
    reference the compiled ``feature_view`` is tested against, and the pass for what it
    does not read."""
    # Filled key by key, in the documented order: CPython 3.11 builds a dict display this
    # large as sub-dicts merged into one, at twice the cost.
    view: dict[str, Any] = {}
    view["user_id"] = record.user_id if record is not None else None
    view["as_of"] = now
    view["personalization"] = personalized
    compiled = getattr(native(), "message_features", None)  # None: not built, or before
    # None: a value of a type the stream worker does not write; the Python pass reads it
    found = compiled(state, now, EVENT_WIDTHS, RATE_WINDOW_S) if compiled is not None else None
    events, messages, recent_intents, ranked_intents = (
        message_features_in_python(state, now) if found is None else found
    )
    view["events_total"] = state["n"]
    (view["events_1h"], view["events_24h"], view["events_7d"], view["events_30d"]) = events
    view["customer_messages_total"] = state["n_cm"]
    (
        view["customer_messages_1h"],
        view["customer_messages_24h"],
        view["customer_messages_7d"],
        view["customer_messages_30d"],
    ) = messages
    newest = state["newest"]
    view["first_seen"] = state["first"]
    view["last_event_time"] = newest
    view["time_since_last_contact_s"] = None if newest is None else max(0.0, now - newest)
    view["recent_intents"] = recent_intents
    view["intent_counts_30d"] = ranked_intents
    view["top_intent_30d"] = next(iter(ranked_intents), None)
    view["last_bot_message"] = _unanswered_bot_message(state)
    view["csat_count"], view["csat_avg"], view["csat_ewma"] = _csat_features(state)
    sessions = session_summary(state["sessions"], now, SESSION_WIDTHS, RATE_WINDOW_S)
    view["sessions_7d"], view["sessions_30d"] = sessions.counts
    view["resolution_rate_30d"] = sessions.resolution_rate
    view["handoff_rate_30d"] = sessions.handoff_rate
    view["unresolved_streak"] = sessions.unresolved_streak
    view["avg_session_length_s_30d"] = sessions.mean_length_s
    (
        view["articles_viewed"],
        view["articles_helpful"],
        view["articles_unhelpful"],
        view["articles_resolved"],
        view["articles_resolved_by_intent"],
    ) = _article_features(state, sessions.resolutions)
    memory = memory_view(state, now)
    view["variant_rewards"] = memory["variant_rewards"]
    view["article_rewards"] = memory["article_rewards"]
    view["preferred_channel"] = _preferred_channel(state["channels"])
    view["late_events"] = state["late"]
    view["history_capped"] = state["cut_cap"] is not None
    profile = profile or {}
    view["name"] = profile.get("name")
    view["tier"] = profile.get("tier", DEFAULT_TIER)
    view["language"] = profile.get("language", DEFAULT_LANGUAGE)
    view["region"] = profile.get("region")
    view["products"] = list(profile.get("products", []))
    view["attributes"] = dict(profile.get("attributes", {}))
    segments = view["segments"] = rules.segments(view)
    view["segment"] = segments[0]
    view["state_event_time"] = record.event_time if record is not None else None
    view["state_updated_at"] = record.updated_at if record is not None else None
    return view


# The keys of the view that the shared counters read (stream/article_stats.py):
# deltas_for_event reads the tier, the segment, the latest intent, the articles that helped;
# segment_deltas the segment. The segment rules read the rest.
COUNTER_VIEW_KEYS = (
    "as_of",
    "personalization",
    "first_seen",
    "recent_intents",
    "csat_ewma",
    "sessions_7d",
    "unresolved_streak",
    "articles_helpful",
    "articles_resolved",
    "tier",
    "segments",
    "segment",
)


def counter_view(
    record: FeatureRecord | None,
    profile: Mapping[str, Any] | None,
    now: float,
    rules: SegmentRules = DEFAULT_RULES,
) -> dict[str, Any]:
    """The :data:`COUNTER_VIEW_KEYS` of :func:`feature_view`, with the same values, at a
    fraction of its cost: the stream worker builds one before every article and outcome
    event it applies (windows, memory, channels and intent counts are left out).

    >>> from tailorbot.features.state import apply_event
    >>> state = new_state()
    >>> _ = apply_event(state, {"type": "rating", "event_id": "e1", "user_id": "u1",
    ...     "session_id": "s1", "timestamp": "2026-01-01T10:00:00Z", "score": 1}, None)
    >>> record = FeatureRecord("u1", state, partition=0, offset=0, event_time=0.0,
    ...                        updated_at=0.0)
    >>> counter_view(record, {"tier": "gold"}, now=1767263400.0)["segments"]
    ['at_risk', 'vip', 'new']
    """
    personalized, state = _consented_state(record, profile)
    sessions = session_summary(state["sessions"], now, SESSION_WIDTHS, RATE_WINDOW_S)
    sessions_7d, _ = sessions.counts
    view: dict[str, Any] = {
        "as_of": now,
        "personalization": personalized,
        "first_seen": state["first"],
        "recent_intents": [intent for _, intent in state["intents"]],
        "csat_ewma": _csat_features(state)[2],
        "sessions_7d": sessions_7d,
        "unresolved_streak": sessions.unresolved_streak,
        "articles_helpful": _helpful_articles(state),
        "articles_resolved": _by_count(_overall(_resolved_articles(state, sessions.resolutions))),
        "tier": _tier(profile),
    }
    view["segments"] = rules.segments(view)
    view["segment"] = view["segments"][0]
    return view


def _consented_state(
    record: FeatureRecord | None, profile: Mapping[str, Any] | None
) -> tuple[bool, dict[str, Any]]:
    """(personalization consent, the state the view reads): without consent, a new state,
    so every behavioural feature reads as for a user without events."""
    personalized = consents_to_personalization(profile)
    return personalized, record.state if record is not None and personalized else new_state()


def message_features_in_python(
    state: dict[str, Any], now: float
) -> tuple[list[int], list[int], list[Any], dict[str, int]]:
    """``(events' window counts, customer messages' window counts, recent intents, intent
    counts of the last 30 days)``: what the compiled ``message_features`` reads in one call
    where the extension is built (``csrc/messages.c``), the reference it is tested against."""
    return (
        counts_in_windows(state["ts"], now, EVENT_WIDTHS),
        counts_in_windows(state["cm_ts"], now, EVENT_WIDTHS),
        [intent for _, intent in state["intents"]],
        _intent_counts(state, now),
    )


def _intent_counts(state: dict[str, Any], now: float) -> dict[str, int]:
    """The customer's intents of the last 30 days with their counts, most frequent first."""
    counts: dict[str, int] = {}
    for intent in state["cm_intent"][window_slice(state["cm_ts"], now, RATE_WINDOW_S)]:
        if intent:
            counts[intent] = counts.get(intent, 0) + 1
    # most frequent first, ties by name (one intent, the common case, needs no sort)
    return counts if len(counts) < 2 else dict(sorted(counts.items(), key=_by_count_then_name))


def _by_count_then_name(item: tuple[str, int]) -> tuple[int, str]:
    return -item[1], item[0]


def _unanswered_bot_message(state: dict[str, Any]) -> dict[str, Any] | None:
    """The newest bot message, unless a customer message came after it (it was answered)."""
    bot = state.get("bot")  # records written before the key existed have none
    if bot is None or (state["cm_ts"] and state["cm_ts"][-1] > bot[0]):
        return None
    return {"time": bot[0], "session_id": bot[1], "text": bot[2]}


def _csat_features(state: dict[str, Any]) -> tuple[int, float | None, float | None]:
    """``(csat_count, csat_avg, csat_ewma)``."""
    n = state["csat_n"]
    return (
        n,
        state["csat_sum"] / n if n else None,
        ewma(state["ewma"], state["alpha"] or 0.0, state["ratings"]),
    )


def _article_features(
    state: dict[str, Any], live: dict[str, dict[str, int]]
) -> tuple[list[str], list[str], list[str], list[str], dict[str, list[str]]]:
    """``(articles_viewed, articles_helpful, articles_unhelpful, articles_resolved,
    articles_resolved_by_intent)``."""
    views = state["views"]
    feedback = state["feedback"]
    resolved = _resolved_articles(state, live)
    if not (views or feedback or resolved):  # no article activity: most users, no sorting
        return [], [], [], [], {}
    return (
        sorted(views, key=lambda a: (-views[a], a)),
        _helpful_articles(state),
        sorted(a for a, vote in feedback.items() if not vote[1]),
        _by_count(_overall(resolved)),
        {intent: _by_count(articles) for intent, articles in sorted(resolved.items()) if intent},
    )


def _helpful_articles(state: dict[str, Any]) -> list[str]:
    return sorted(a for a, vote in state["feedback"].items() if vote[1])


def _resolved_articles(
    state: dict[str, Any], live: dict[str, dict[str, int]]
) -> dict[str, dict[str, int]]:
    """Per intent, how often each article resolved it: the state's kept counts and ``live``,
    those of its sessions (:attr:`SessionSummary.resolutions`)."""
    if not state["resolved"]:
        return live  # made for this view alone: no copy
    resolved: dict[str, dict[str, int]] = {i: dict(a) for i, a in state["resolved"].items()}
    for intent, counts in live.items():
        articles = resolved.setdefault(intent, {})
        for article, n in counts.items():
            articles[article] = articles.get(article, 0) + n
    return resolved


def _overall(resolved: Mapping[str, Mapping[str, int]]) -> dict[str, int]:
    overall: dict[str, int] = {}
    for articles in resolved.values():
        for article, n in articles.items():
            overall[article] = overall.get(article, 0) + n
    return overall


def _by_count(counts: Mapping[str, int]) -> list[str]:
    return sorted(counts, key=lambda k: (-counts[k], k))


def _preferred_channel(channels: Mapping[str, list[float]]) -> str | None:
    if len(channels) < 2:  # none, or the one channel the customer uses
        return next(iter(channels), None)
    return min(channels, key=lambda c: (-channels[c][0], -channels[c][1], c))


def _tier(profile: Mapping[str, Any] | None) -> str:
    return (profile or {}).get("tier", DEFAULT_TIER)
