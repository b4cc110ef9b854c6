"""The stream worker feeds the recommender's shared article statistics."""

from __future__ import annotations

from tailorbot.models.recommend.collaborative import NS_INTENT, CollaborativeStats
from tailorbot.stream.worker import StreamWorker
from tests.stream.eventgen import T0, make_event
from tests.stream.test_worker import append, backends, drain  # noqa: F401 - fixture


def _session(user: str, n: int, article: str, resolved: bool) -> list[dict]:
    sid = f"{user}-s{n}"
    ts = T0 + n * 600
    return [
        make_event(
            "message", ts, event_id=f"{sid}-m", user_id=user, session_id=sid, intent="card_arrival"
        ),
        make_event(
            "article_viewed",
            ts + 10,
            event_id=f"{sid}-v",
            user_id=user,
            session_id=sid,
            article_id=article,
        ),
        make_event(
            "resolution",
            ts + 20,
            event_id=f"{sid}-r",
            user_id=user,
            session_id=sid,
            resolved=resolved,
            article_id=article if resolved else None,
        ),
    ]


def test_applied_article_events_reach_the_shared_counters_once(backends) -> None:  # noqa: F811
    log, stores, settings = backends
    events = [e for n in range(6) for e in _session(f"u{n % 3}", n, "kb-card", n % 2 == 0)]
    append(log, events)
    drain(StreamWorker(log, stores, settings))
    counters = stores.counters.counters(NS_INTENT)
    assert counters["card_arrival|issues"] == 6
    assert counters["card_arrival|kb-card|res"] == 3
    assert counters["card_arrival|kb-card|view"] == 6

    # A re-delivery (same event ids, new offsets) changes neither state nor statistics.
    append(log, events)
    drain(StreamWorker(log, stores, settings))
    assert stores.counters.counters(NS_INTENT) == counters
    stats = CollaborativeStats.load(stores.counters)
    rate = stats.resolution_rate("card_arrival", "kb-card", [])
    assert 0 < rate.rate < 1
