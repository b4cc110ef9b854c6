"""The stream worker feeds the recommender's shared article statistics."""

from __future__ import annotations

from tailorbot.features.memory import NS_SEGMENT_VARIANT
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


class _PausingFeatures:
    """The real feature store; the first ``get_many`` runs ``meanwhile`` before it returns,
    so this worker holds states read *before* another worker's write (a hand-over)."""

    def __init__(self, inner, meanwhile) -> None:
        self.inner = inner
        self.meanwhile = meanwhile

    def get_many(self, user_ids):
        found = self.inner.get_many(user_ids)
        if self.meanwhile is not None:
            run, self.meanwhile = self.meanwhile, None
            run()
        return found

    def __getattr__(self, name):
        return getattr(self.inner, name)


def _handover(log, stores, settings) -> dict[str, float]:
    """Two workers both own the partition (two groups stand in for the old and the new
    owner): the second reads the users' states, the first applies and writes the same
    events, then the second applies them on its stale states and writes too."""
    from dataclasses import replace

    first = StreamWorker(log, stores, settings.model_copy(update={"consumer_group": "old"}))
    second_stores = replace(
        stores, features=_PausingFeatures(stores.features, lambda: drain(first))
    )
    second = StreamWorker(
        log,
        second_stores,
        settings.model_copy(update={"consumer_group": "new"}),
        state_cache_size=0,
    )
    drain(second)
    return stores.counters.counters(NS_INTENT)


def test_a_partition_hand_over_counts_each_article_event_once(backends) -> None:  # noqa: F811
    log, stores, settings = backends
    events = [e for n in range(4) for e in _session(f"h{n % 2}", n, "kb-card", True)]
    append(log, events)
    counters = _handover(log, stores, settings)
    assert counters["card_arrival|issues"] == 4
    assert counters["card_arrival|kb-card|res"] == 4
    assert counters["card_arrival|kb-card|view"] == 4


def test_segment_variant_counters_learn_from_the_personalized_arm_only(backends) -> None:  # noqa: F811
    """The control's bandit learns from its own arm; the personalized policy's segment priors
    must too, or at a 50 % holdout they rest on twice the control's data."""
    log, stores, settings = backends

    def rating(n: int, arm: str | None) -> dict:
        meta = {"decision_id": f"d{n}", "variant": "concise"} | ({"arm": arm} if arm else {})
        return make_event(
            "rating", T0 + n, event_id=f"r{n}", user_id=f"a{n}", score=5, metadata=meta
        )

    arms = ["personalized", "control", "pre_period", None, "personalized"]
    append(log, [rating(n, arm) for n, arm in enumerate(arms)])
    drain(StreamWorker(log, stores, settings))
    counters = stores.counters.counters(NS_SEGMENT_VARIANT)
    # Two decisions of the personalized arm and one event from outside any experiment.
    assert counters["all|concise|n"] == 3
    assert counters["all|concise|sum"] == 3.0
