"""Offline evaluation of article recommendations by replaying an event log.

Every event of the log is replayed once, in event-time order across all partitions (ties by
partition and offset), through the real per-user feature state
(:mod:`tailorbot.features.state`) and the collaborative statistics. At the *first customer
message* of each session both policies are asked for their top ``k``: the hybrid recommender
with the statistics learned from the events before that message, and the intent-only
baseline. A session counts when its latest ``resolution`` says ``resolved: true`` and names an
``article_id``: that article is the relevant one. Later events of the session, including the
feedback on that very article, are learned only after the question was asked, so nothing
leaks.

Metrics, over the counted sessions: **hit rate@k** (the resolving article is in the top k)
and **NDCG@k** (with one relevant article: ``1 / log2(rank + 1)``, rank from 1, 0 past k).

From Python: ``evaluate_recommendations(open_log(url, partitions), load_kb(dir), k=3,
profiles=store).to_dict()`` (see tests/models/recommend/test_evaluation.py).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from tailorbot.features.params import FeatureParams
from tailorbot.features.state import APPLIED, apply_outcome, new_state
from tailorbot.features.view import feature_view
from tailorbot.log.base import EventLog
from tailorbot.models.recommend.base import Recommender
from tailorbot.models.recommend.cf_training import events_in_time_order
from tailorbot.models.recommend.collaborative import ARTICLE_EVENT_TYPES, CollaborativeStats
from tailorbot.models.recommend.hybrid import HybridRecommender
from tailorbot.store.base import FeatureRecord, ProfileStore

IntentFn = Callable[[str], tuple[str | None, float]]


class EvaluationError(ValueError):
    """The log cannot be evaluated (empty, or no resolved session names an article)."""


@dataclass(frozen=True, slots=True)
class PolicyScore:
    hit_rate: float
    ndcg: float
    hits: int

    def to_dict(self) -> dict[str, float]:
        return {"hit_rate": self.hit_rate, "ndcg": self.ndcg, "hits": self.hits}


@dataclass(frozen=True, slots=True)
class RecsEvaluation:
    """What :func:`evaluate_recommendations` measured."""

    k: int
    events: int  # events replayed
    sessions: int  # sessions counted (resolved, with an article, asked at a customer message)
    unasked: int  # resolved sessions with an article but no customer message before
    unknown_articles: int  # counted sessions whose resolving article is not in the KB
    without_intent: int  # counted sessions asked without an intent (text relevance only)
    # counted sessions resolved by an article the user had marked unhelpful when asked: the
    # hybrid never re-offers it (a customer in a memoryless simulator may still click it)
    vetoed: int
    policies: dict[str, PolicyScore] = field(default_factory=dict)

    def lift(
        self, metric: str = "hit_rate", policy: str = "hybrid", over: str = "intent_only"
    ) -> float:
        return getattr(self.policies[policy], metric) - getattr(self.policies[over], metric)

    def to_dict(self) -> dict[str, Any]:
        return {
            "k": self.k,
            "events": self.events,
            "sessions": self.sessions,
            "unasked": self.unasked,
            "unknown_articles": self.unknown_articles,
            "without_intent": self.without_intent,
            "vetoed": self.vetoed,
            "policies": {name: score.to_dict() for name, score in self.policies.items()},
            "lift": {"hit_rate": self.lift("hit_rate"), "ndcg": self.lift("ndcg")}
            if {"hybrid", "intent_only"} <= set(self.policies)
            else {},
        }


def ndcg_at_k(ranked: list[str], relevant: str, k: int) -> float:
    """NDCG@k with a single relevant item (the ideal DCG is 1).

    >>> ndcg_at_k(["a", "b", "c"], "b", 3) == 1 / math.log2(3)
    True
    """
    for rank, item in enumerate(ranked[:k], start=1):
        if item == relevant:
            return 1.0 / math.log2(rank + 1)
    return 0.0


def evaluate_recommendations(
    log: EventLog,
    kb: Any,
    k: int = 3,
    profiles: Mapping[str, Mapping[str, Any]] | ProfileStore | None = None,
    weights: Mapping[str, float] | None = None,
    intent_fn: IntentFn | None = None,
    params: FeatureParams | None = None,
) -> RecsEvaluation:
    """Replay ``log`` and score the hybrid recommender against the intent-only baseline.

    Parameters
    ----------
    profiles
        User profiles (tier, language, consent) by user id, or the profile store to read
        them from; a user without one gets the default profile.
    weights
        Weights of the hybrid recommender (default: its defaults).
    intent_fn
        ``text -> (intent, confidence)`` for customer messages logged without an intent.
    params
        Feature-state parameters (default: the defaults of :class:`FeatureParams`).
    """
    if k < 1:
        raise EvaluationError(f"k must be >= 1, got {k}")
    events = events_in_time_order(log)
    if not events:
        raise EvaluationError("the event log is empty: nothing to evaluate")
    params = params or FeatureParams()
    if isinstance(profiles, ProfileStore):
        profiles = profiles.get_many({event["user_id"] for *_, event in events})
    profiles = profiles or {}
    stats = CollaborativeStats()
    replay = _Replay(
        {
            "hybrid": HybridRecommender(kb, weights=weights, stats=stats),
            "intent_only": HybridRecommender.intent_only(kb),
        },
        stats,
        profiles or {},
        params,
        intent_fn,
        k,
    )
    for ts, partition, offset, event in events:
        replay.apply(ts, partition, offset, event)
    return replay.score(kb, len(events))


Session = tuple[str, str]


class _Replay:
    """The log replayed in time order: each session's first customer message asks every
    policy for ``k`` articles, with the user's features as of that moment."""

    def __init__(
        self,
        policies: dict[str, Recommender],
        stats: CollaborativeStats,
        profiles: Mapping[str, Mapping[str, Any]],
        params: FeatureParams,
        intent_fn: IntentFn | None,
        k: int,
    ) -> None:
        self.policies = policies
        self.stats = stats
        self.profiles = profiles
        self.params = params
        self.intent_fn = intent_fn
        self.k = k
        self.states: dict[str, dict[str, Any]] = {}
        self.asked: dict[Session, dict[str, list[str]]] = {}
        self.no_intent: set[Session] = set()
        self.unhelpful: dict[Session, frozenset[str]] = {}  # the user's vetoes when asked
        self.outcome: dict[Session, str | None] = {}  # latest resolution's article, if resolved

    def apply(self, ts: float, partition: int, offset: int, event: dict[str, Any]) -> None:
        user_id, kind = event["user_id"], event["type"]
        state = self.states.setdefault(user_id, new_state())
        profile = self.profiles.get(user_id)
        session = (user_id, event["session_id"])
        before = None
        if kind in ARTICLE_EVENT_TYPES:
            before = _view(user_id, state, profile, ts, partition, offset)
        if apply_outcome(state, event, self.params, ts) != APPLIED:
            return
        if before is not None:
            self.stats.learn_one(event, before)
        if kind == "resolution":
            resolved = event.get("resolved") and event.get("article_id")
            self.outcome[session] = event["article_id"] if resolved else None
        elif kind == "message" and event.get("role") == "customer" and session not in self.asked:
            view = _view(user_id, state, profile, ts, partition, offset)
            self._ask(session, event, view)

    def _ask(self, session: Session, event: dict[str, Any], view: dict[str, Any]) -> None:
        intent, confidence = event.get("intent"), event.get("confidence")
        if intent is None and self.intent_fn is not None:
            intent, confidence = self.intent_fn(event["text"])
        if confidence is None:
            confidence = 1.0 if intent else 0.0
        if not intent:
            self.no_intent.add(session)
        if view["articles_unhelpful"]:
            self.unhelpful[session] = frozenset(view["articles_unhelpful"])
        self.asked[session] = {
            name: [
                r.article_id
                for r in policy.recommend(
                    view if name == "hybrid" else None,
                    event["text"],
                    intent,
                    float(confidence),
                    self.k,
                    tier=view.get("tier"),
                    language=view.get("language"),
                )
            ]
            for name, policy in self.policies.items()
        }

    def score(self, kb: Any, events: int) -> RecsEvaluation:
        resolved_sessions = {s: a for s, a in self.outcome.items() if a is not None}
        counted = [(s, a) for s, a in resolved_sessions.items() if s in self.asked]
        if not counted:
            raise EvaluationError(
                f"no session to evaluate among {events} events: none ended with a resolution "
                "that says resolved=true and names an article_id after a customer message"
            )
        known = {a.id for a in kb.articles}
        scores = {}
        for name in self.policies:
            hits = sum(1 for s, a in counted if a in self.asked[s][name])
            ndcg = sum(ndcg_at_k(self.asked[s][name], a, self.k) for s, a in counted)
            scores[name] = PolicyScore(hits / len(counted), ndcg / len(counted), hits)
        return RecsEvaluation(
            k=self.k,
            events=events,
            sessions=len(counted),
            unasked=len(resolved_sessions) - len(counted),
            unknown_articles=sum(1 for _, a in counted if a not in known),
            without_intent=sum(1 for s, _ in counted if s in self.no_intent),
            vetoed=sum(1 for s, a in counted if a in self.unhelpful.get(s, ())),
            policies=scores,
        )


def _view(
    user_id: str,
    state: dict[str, Any],
    profile: Mapping[str, Any] | None,
    now: float,
    partition: int,
    offset: int,
) -> dict[str, Any]:
    record = FeatureRecord(user_id, state, partition, offset, event_time=now, updated_at=now)
    return feature_view(record, profile, now)
