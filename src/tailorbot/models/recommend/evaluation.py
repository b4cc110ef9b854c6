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
and **NDCG@k** (with one relevant article: ``1 / log2(rank + 1)``, rank from 1, 0 past k),
each with a 95 % percentile-bootstrap interval over *users* (a user's sessions are not
independent), and the same for the hybrid's lift over the control.

Four policies: ``hybrid`` (every signal), ``control`` (the A/B test's control: the same
ranker without the user's view, with the statistics of all customers and no CF model; the
lift is over it, the strongest ranking that is not personal), ``intent_only`` (text and
intent: the control until 2026-11-30, kept for comparison) and ``popularity`` (the
articles that helped most customers so far, the same for everyone).

**Time split** (``train_share=0.7``): the collaborative-filtering model (item-kNN) is trained
on the first 70 % of the events by time and frozen; only sessions whose first customer
message comes after that point are counted. The online statistics (segment rates,
co-occurrence, popularity, each user's features) keep learning from the replayed events, as
they do when serving, but only ever from events before the question. Without a split no CF
model is used (training it on the whole log would leak the answers).

From Python: ``evaluate_recommendations(open_log(url, partitions), load_kb(dir), k=3,
profiles=store).to_dict()`` (see tests/models/recommend/test_evaluation.py).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tailorbot.features.params import FeatureParams
from tailorbot.features.state import APPLIED, apply_outcome, new_state
from tailorbot.features.view import feature_view
from tailorbot.log.base import EventLog
from tailorbot.models.recommend.base import Recommender
from tailorbot.models.recommend.bootstrap import user_bootstrap
from tailorbot.models.recommend.cf_training import events_in_time_order, train_item_knn
from tailorbot.models.recommend.collaborative import ARTICLE_EVENT_TYPES, CollaborativeStats
from tailorbot.models.recommend.hybrid import HybridRecommender
from tailorbot.models.recommend.item_knn import ItemKNN
from tailorbot.models.recommend.popularity import PopularityRecommender
from tailorbot.store.base import FeatureRecord, FeatureStore, ProfileStore

IntentFn = Callable[[str], tuple[str | None, float]]


BASELINE = "control"  # the lift is over the A/B test's control ranker


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
    users: int = 0  # users with a counted session (the bootstrap's units)
    split: dict[str, Any] = field(default_factory=dict)  # the time split, when one was made
    # 95 % user-bootstrap intervals: {policy: {metric: [lo, hi]}}, and of the lift
    intervals: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    lift_intervals: dict[str, list[float]] = field(default_factory=dict)
    # hit rate and NDCG over the counted sessions not resolved by a vetoed article
    without_vetoed: dict[str, dict[str, float]] = field(default_factory=dict)

    def lift(self, metric: str = "hit_rate", policy: str = "hybrid", over: str = BASELINE) -> float:
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
            "users": self.users,
            "split": dict(self.split),
            "policies": {
                name: {**score.to_dict(), "ci95": self.intervals.get(name, {})}
                for name, score in self.policies.items()
            },
            "lift": {"hit_rate": self.lift("hit_rate"), "ndcg": self.lift("ndcg")}
            if {"hybrid", BASELINE} <= set(self.policies)
            else {},
            "lift_ci95": dict(self.lift_intervals),
            "without_vetoed": dict(self.without_vetoed),
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
    train_share: float | None = None,
    cf_params: Mapping[str, Any] | None = None,
    bootstrap: int = 1000,
    seed: int = 0,
    features: FeatureStore | None = None,
) -> RecsEvaluation:
    """Replay ``log`` and score the hybrid recommender against the control, intent-only and
    popularity.

    Parameters
    ----------
    features
        The feature store whose erasures the replay honours (give it for a served log;
        ``None``: a log no server erases from).
    profiles
        User profiles (tier, language, consent) by user id, or the profile store to read
        them from; a user without one gets the default profile.
    weights
        Weights of the hybrid recommender (default: its defaults).
    intent_fn
        ``text -> (intent, confidence)`` for customer messages logged without an intent.
    params
        Feature-state parameters (default: the defaults of :class:`FeatureParams`).
    train_share
        Time split: train the CF model on this share of the events (by time) and count only
        sessions asked after them (None: no split, no CF model, every session counts).
    cf_params
        Arguments of :class:`~tailorbot.models.recommend.item_knn.ItemKNN`.
    bootstrap, seed
        User-level bootstrap resamples for the intervals, and their seed.
    """
    if k < 1:
        raise EvaluationError(f"k must be >= 1, got {k}")
    if train_share is not None and not 0.0 < train_share < 1.0:
        raise EvaluationError(f"train_share must be within (0, 1), got {train_share}")
    events = events_in_time_order(log, features=features)
    if not events:
        raise EvaluationError("the event log is empty: nothing to evaluate")
    params = params or FeatureParams()
    if isinstance(profiles, ProfileStore):
        profiles = profiles.get_many({event["user_id"] for *_, event in events})
    cf: ItemKNN | None = None
    ask_after = -math.inf
    split: dict[str, Any] = {}
    if train_share is not None:
        n_train = max(1, int(len(events) * train_share))
        ask_after = events[n_train - 1][0]
        cf = train_item_knn((e for *_, e in events[:n_train]), **dict(cf_params or {}))
        split = {"train_share": train_share, "train_events": n_train, "train_until": ask_after}
        split.update(cf.summary())
    stats = CollaborativeStats()
    replay = _Replay(
        {
            "hybrid": HybridRecommender(kb, weights=weights, stats=stats, cf=cf),
            BASELINE: HybridRecommender(kb, weights=weights, stats=stats),  # asked without a view
            "intent_only": HybridRecommender.intent_only(kb),
            "popularity": PopularityRecommender(kb, stats),
        },
        stats,
        profiles or {},
        params,
        intent_fn,
        k,
        ask_after,
    )
    for ts, partition, offset, event in events:
        replay.apply(ts, partition, offset, event)
    return replay.score(kb, len(events), split, bootstrap, seed)


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
        ask_after: float = -math.inf,
    ) -> None:
        self.policies = policies
        self.ask_after = ask_after  # sessions first asked at or before this are not counted
        self.before_split: set[Session] = set()
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
            if ts <= self.ask_after:
                self.before_split.add(session)
                self.asked[session] = {}
                return
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

    def score(
        self, kb: Any, events: int, split: dict[str, Any], bootstrap: int, seed: int
    ) -> RecsEvaluation:
        resolved_sessions = {s: a for s, a in self.outcome.items() if a is not None}
        counted = [
            (s, a)
            for s, a in resolved_sessions.items()
            if s in self.asked and s not in self.before_split
        ]
        if not counted:
            where = " after the time split" if split else ""
            raise EvaluationError(
                f"no session to evaluate among {events} events{where}: none ended with a "
                "resolution that says resolved=true and names an article_id after a customer "
                "message"
            )
        known = {a.id for a in kb.articles}
        names = list(self.policies)
        # Per session: hit and NDCG of each policy, in columns (hit_p1, ndcg_p1, hit_p2, ...).
        rows = np.array(
            [
                [
                    value
                    for name in names
                    for value in (
                        float(a in self.asked[s][name]),
                        ndcg_at_k(self.asked[s][name], a, self.k),
                    )
                ]
                for s, a in counted
            ]
        )
        means = rows.mean(axis=0)
        scores = {
            name: PolicyScore(
                float(means[2 * i]), float(means[2 * i + 1]), int(rows[:, 2 * i].sum())
            )
            for i, name in enumerate(names)
        }
        intervals, lift = _intervals(names, rows, [s[0] for s, _ in counted], bootstrap, seed)
        skipped = sum(1 for s in resolved_sessions if s in self.before_split)
        kept = np.array([a not in self.unhelpful.get(s, ()) for s, a in counted])
        kept_means = rows[kept].mean(axis=0) if kept.any() else np.full(rows.shape[1], np.nan)
        without_vetoed = {
            name: {
                "hit_rate": float(kept_means[2 * i]),
                "ndcg": float(kept_means[2 * i + 1]),
                "sessions": int(kept.sum()),
            }
            for i, name in enumerate(names)
        }
        return RecsEvaluation(
            k=self.k,
            events=events,
            sessions=len(counted),
            unasked=len(resolved_sessions) - len(counted) - skipped,
            unknown_articles=sum(1 for _, a in counted if a not in known),
            without_intent=sum(1 for s, _ in counted if s in self.no_intent),
            vetoed=sum(1 for s, a in counted if a in self.unhelpful.get(s, ())),
            policies=scores,
            users=len({s[0] for s, _ in counted}),
            split={**split, "train_sessions_skipped": skipped} if split else {},
            intervals=intervals,
            lift_intervals=lift,
            without_vetoed=without_vetoed,
        )


def _intervals(
    names: list[str], rows: np.ndarray, users: list[str], reps: int, seed: int
) -> tuple[dict[str, dict[str, list[float]]], dict[str, list[float]]]:
    """User-bootstrap 95 % intervals of each policy's metrics and of hybrid − control."""
    if reps < 1:
        return {}, {}
    index = {u: i for i, u in enumerate(dict.fromkeys(users))}
    of_user = np.array([index[u] for u in users])
    columns = rows
    lift_cols: list[str] = []
    if {"hybrid", BASELINE} <= set(names):
        h, b = names.index("hybrid"), names.index(BASELINE)
        diff = rows[:, [2 * h, 2 * h + 1]] - rows[:, [2 * b, 2 * b + 1]]
        columns = np.hstack([rows, diff])
        lift_cols = ["hit_rate", "ndcg"]
    sums = np.zeros((len(index), columns.shape[1]))
    np.add.at(sums, of_user, columns)
    counts = np.bincount(of_user, minlength=len(index)).astype(float)
    lo, hi = user_bootstrap(sums, counts, reps=reps, seed=seed)
    pairs = [[round(float(a), 6), round(float(b), 6)] for a, b in zip(lo, hi, strict=True)]
    intervals = {
        name: {"hit_rate": pairs[2 * i], "ndcg": pairs[2 * i + 1]} for i, name in enumerate(names)
    }
    lift = {m: pairs[2 * len(names) + j] for j, m in enumerate(lift_cols)}
    return intervals, lift


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
