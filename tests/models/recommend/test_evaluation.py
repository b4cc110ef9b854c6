from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tailorbot.events.codec import encode_event
from tailorbot.events.schema import EVENT_ADAPTER
from tailorbot.kb.model import Article, KnowledgeBase
from tailorbot.log import open_log
from tailorbot.log.base import EventLog
from tailorbot.models.recommend.evaluation import (
    EvaluationError,
    evaluate_recommendations,
    ndcg_at_k,
)
from tailorbot.store import open_stores

KB = KnowledgeBase(
    [
        Article(
            id="kb-where-is-my-card",
            title="Where is my card?",
            body="Your card arrives within a week. Card delivery can be tracked in the app.",
            intents=["card_arrival"],
        ),
        Article(
            id="kb-express-courier",
            title="Express courier",
            body="Ask for an express courier; it brings it the next day.",
            intents=["card_arrival"],
        ),
        Article(
            id="kb-card-fees",
            title="Card fees",
            body="Ordering a replacement card costs nothing.",
            intents=["card_fees"],
        ),
    ]
)
START = datetime(2026, 1, 1, tzinfo=UTC)
MESSAGE = "my card has not arrived yet"


def session_events(user: str, session: str, at: datetime, article: str | None) -> list[dict]:
    """One support session; ``article`` None: unresolved."""

    def event(kind: str, minute: int, **fields: object) -> dict:
        return {
            "type": kind,
            "user_id": user,
            "session_id": session,
            "timestamp": (at + timedelta(minutes=minute)).isoformat(),
            **fields,
        }

    events = [
        event("session_started", 0),
        event("message", 1, role="customer", text=MESSAGE, intent="card_arrival", confidence=0.9),
    ]
    if article is None:
        events.append(event("resolution", 3, resolved=False))
    else:
        events += [
            event("article_viewed", 2, article_id=article),
            event("article_feedback", 3, article_id=article, helpful=True),
            event("resolution", 4, resolved=True, article_id=article),
        ]
    return events + [event("session_ended", 5)]


def write(log: EventLog, events: list[dict]) -> None:
    items = []
    for body in events:
        event = EVENT_ADAPTER.validate_python(body)
        items.append((event.user_id, encode_event(event)))
    log.append(items)


def planted_log(path: Path, sessions: int = 60) -> tuple[EventLog, dict[str, dict]]:
    """Gold customers' card issues are resolved by the express courier article, the others'
    by the article that matches the message best: a pattern only the hybrid can learn."""
    log = open_log(f"sqlite:///{path}/log.db", partitions=4)
    profiles = {}
    events = []
    for i in range(sessions):
        user = f"u{i % 12:02d}"
        tier = "gold" if i % 12 < 6 else "standard"
        profiles[user] = {"tier": tier}
        article = "kb-express-courier" if tier == "gold" else "kb-where-is-my-card"
        events += session_events(user, f"s{i:03d}", START + timedelta(hours=i), article)
    write(log, events)
    return log, profiles


def test_ndcg_with_one_relevant_article() -> None:
    assert ndcg_at_k(["a", "b"], "a", 3) == 1.0
    assert ndcg_at_k(["a", "b"], "b", 3) == pytest.approx(0.6309, abs=1e-4)
    assert ndcg_at_k(["a", "b"], "b", 1) == 0.0
    assert ndcg_at_k([], "b", 3) == 0.0


def test_personalized_policy_beats_the_baseline_on_a_planted_pattern(tmp_path: Path) -> None:
    log, profiles = planted_log(tmp_path)
    result = evaluate_recommendations(log, KB, k=1, profiles=profiles)
    hybrid, baseline = result.policies["hybrid"], result.policies["intent_only"]
    assert result.sessions == 60 and result.unasked == 0 and result.unknown_articles == 0
    assert 0.0 < baseline.hit_rate < 1.0
    assert baseline.hit_rate == pytest.approx(0.5)  # it only ever serves the standard half
    assert hybrid.hit_rate > baseline.hit_rate + 0.25
    assert hybrid.ndcg > baseline.ndcg
    # The lift is over the A/B control: the same ranker without the user's view. It learns
    # from all customers, but the planted pattern is by tier, which only the hybrid reads.
    control = result.policies["control"]
    assert hybrid.hit_rate > control.hit_rate + 0.25
    assert result.lift("hit_rate") == pytest.approx(hybrid.hit_rate - control.hit_rate)
    assert result.to_dict()["policies"]["hybrid"]["hits"] == hybrid.hits
    # With the whole list both policies find the article: hit rate is bounded by 1.
    wide = evaluate_recommendations(log, KB, k=3, profiles=profiles)
    assert wide.policies["hybrid"].hit_rate == wide.policies["intent_only"].hit_rate == 1.0


def test_profiles_can_come_from_the_online_store(tmp_path: Path) -> None:
    log, profiles = planted_log(tmp_path)
    stores = open_stores(f"sqlite:///{tmp_path}/store.db")
    for user, profile in profiles.items():
        stores.profiles.put(user, profile)
    from_store = evaluate_recommendations(log, KB, k=1, profiles=stores.profiles)
    from_mapping = evaluate_recommendations(log, KB, k=1, profiles=profiles)
    assert from_store.to_dict() == from_mapping.to_dict()
    stores.close()


def test_nothing_leaks_from_the_session_being_evaluated(tmp_path: Path) -> None:
    # One gold session, resolved by the article the text ranks second, after helpful feedback
    # on it in the same session: learned only after the question, so the hybrid misses it.
    log = open_log(f"sqlite:///{tmp_path}/log.db", partitions=2)
    write(log, session_events("u1", "s1", START, "kb-express-courier"))
    result = evaluate_recommendations(log, KB, k=1, profiles={"u1": {"tier": "gold"}})
    assert result.sessions == 1
    assert result.policies["hybrid"].hit_rate == 0.0
    # The same user's second session benefits from the first one (their own history).
    write(log, session_events("u1", "s2", START + timedelta(days=1), "kb-express-courier"))
    result = evaluate_recommendations(log, KB, k=1, profiles={"u1": {"tier": "gold"}})
    assert result.policies["hybrid"].hits == 1 and result.policies["intent_only"].hits == 0


def test_intent_fn_fills_messages_logged_without_intent(tmp_path: Path) -> None:
    log = open_log(f"sqlite:///{tmp_path}/log.db", partitions=2)
    events = session_events("u1", "s1", START, "kb-where-is-my-card")
    del events[1]["intent"], events[1]["confidence"]
    write(log, events)
    calls = []

    def intent_fn(text: str) -> tuple[str, float]:
        calls.append(text)
        return "card_fees", 1.0

    result = evaluate_recommendations(log, KB, k=1, intent_fn=intent_fn)
    assert calls == [MESSAGE]
    # The (wrong) intent it returned was used: its weight beats the text match, so the
    # fees article is ranked first and the resolving one is missed.
    assert result.policies["intent_only"].hit_rate == 0.0


def test_empty_log_and_log_without_resolved_sessions_are_errors(tmp_path: Path) -> None:
    log = open_log(f"sqlite:///{tmp_path}/empty.db", partitions=2)
    with pytest.raises(EvaluationError, match="empty"):
        evaluate_recommendations(log, KB)
    write(log, session_events("u1", "s1", START, None))
    with pytest.raises(EvaluationError, match="no session to evaluate"):
        evaluate_recommendations(log, KB)
    with pytest.raises(EvaluationError, match="k must be"):
        evaluate_recommendations(log, KB, k=0)


def test_an_article_the_user_vetoed_is_not_offered_in_replay_either(tmp_path: Path) -> None:
    log = open_log(f"sqlite:///{tmp_path}/log.db", partitions=2)
    vote = {
        "type": "article_feedback",
        "user_id": "u1",
        "session_id": "s1",
        "timestamp": (START + timedelta(minutes=2)).isoformat(),
        "article_id": "kb-where-is-my-card",
        "helpful": False,
    }
    later = session_events("u1", "s2", START + timedelta(days=1), "kb-where-is-my-card")
    write(log, [*session_events("u1", "s1", START, None), vote, *later])
    result = evaluate_recommendations(log, KB, k=3)
    assert result.sessions == 1 and result.vetoed == 1
    assert result.policies["hybrid"].hits == 0  # never re-offered, even in a list of 3
    assert result.policies["intent_only"].hits == 1


def test_time_split_scores_only_later_sessions_with_user_bootstrap_intervals(
    tmp_path: Path,
) -> None:
    log, profiles = planted_log(tmp_path, sessions=100)
    result = evaluate_recommendations(log, KB, k=1, profiles=profiles, train_share=0.7)
    report = result.to_dict()
    # 100 sessions of 7 events (resolved ones) in time order: the last 30 % are ~30 sessions.
    assert 25 <= result.sessions <= 31 and result.split["train_sessions_skipped"] >= 69
    assert result.split["train_events"] == int(0.7 * result.events)
    assert set(report["policies"]) == {"hybrid", "control", "intent_only", "popularity"}
    assert result.users == 12
    for name, score in result.policies.items():
        lo, hi = result.intervals[name]["hit_rate"]
        assert lo <= score.hit_rate <= hi, name
    lo, hi = result.lift_intervals["hit_rate"]
    assert lo <= result.lift("hit_rate") <= hi and lo > 0  # the planted pattern is learned
    # Every later session counts under no split too, so there are more of them.
    assert evaluate_recommendations(log, KB, k=1, profiles=profiles).sessions == 100
    with pytest.raises(EvaluationError, match="train_share"):
        evaluate_recommendations(log, KB, train_share=1.0)


def test_the_cf_model_trained_before_the_split_lifts_the_hybrid(tmp_path: Path) -> None:
    """Every user resolved by the express courier is, in a later session about the same
    message, resolved by the card-fees article: off-intent, sharing one word with the message,
    so only collaborative filtering brings it into the list."""
    log = open_log(f"sqlite:///{tmp_path}/log.db", partitions=2)
    events = []
    for i in range(40):
        user = f"u{i:02d}"
        at = START + timedelta(hours=i)
        events += session_events(user, f"a{i}", at, "kb-express-courier")
        events += session_events(user, f"b{i}", at + timedelta(minutes=30), "kb-card-fees")
    write(log, events)
    weights = {
        "segment_resolution_rate": 0.0,
        "segment_helpfulness": 0.0,
        "popularity": 0.0,
        "cooccurrence": 0.0,
    }
    with_cf = evaluate_recommendations(log, KB, k=3, weights=weights, train_share=0.7)
    no_cf = evaluate_recommendations(
        log, KB, k=3, weights={**weights, "item_knn": 0.0}, train_share=0.7
    )
    assert no_cf.policies["hybrid"].hit_rate == pytest.approx(0.5)  # the "a" sessions only
    assert with_cf.policies["hybrid"].hit_rate == 1.0
    assert with_cf.split["articles_with_neighbours"] == 2
