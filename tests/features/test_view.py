from __future__ import annotations

import math
from collections import Counter

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tailorbot.features import sessions as sess
from tailorbot.features.context_vector import CONTEXT_KEYS, context_vector
from tailorbot.features.params import FeatureParams
from tailorbot.features.state import apply_event, new_state, recompute
from tailorbot.features.view import COUNTER_VIEW_KEYS, counter_view, feature_view
from tailorbot.store.base import FeatureRecord
from tests.stream.eventgen import DAY, T0, event_streams, make_event, state_of

HOUR = 3600.0
PARAMS = FeatureParams(lateness_s=600.0, recent_intents=3, csat_ewma_alpha=0.5)
NOW = T0 + 40 * DAY


class Builder:
    """Events of one user, with generated ids, applied in arrival order."""

    def __init__(self) -> None:
        self.events: list[dict] = []

    def add(self, kind: str, ts: float, session: str = "s1", **fields: object) -> Builder:
        self.events.append(
            make_event(kind, ts, event_id=f"e{len(self.events)}", session_id=session, **fields)
        )
        return self

    def state(self, reverse: bool = False) -> dict:
        state = new_state()
        for ev in reversed(self.events) if reverse else self.events:
            apply_event(state, ev, PARAMS)
        return state

    def view(self, now: float = NOW, profile: dict | None = None, reverse: bool = False) -> dict:
        record = FeatureRecord("u1", self.state(reverse), 0, len(self.events) - 1, 0.0, 0.0)
        return feature_view(record, profile, now)


def test_event_windows_are_open_at_the_old_end_and_closed_at_now() -> None:
    b = Builder()
    for age in (40 * DAY, 10 * DAY, 2 * DAY, 2 * HOUR, HOUR, 0.5 * HOUR, 0.0):
        b.add("handoff", NOW - age)
    b.add("handoff", NOW + 1)  # after `now`: in no window, but counted in the total
    v = b.view()
    assert (v["events_1h"], v["events_24h"], v["events_7d"], v["events_30d"]) == (2, 4, 5, 6)
    assert v["events_total"] == 8


def test_customer_message_windows_count_only_customer_messages() -> None:
    b = Builder().add("message", NOW - 60).add("message", NOW - 50, role="bot")
    b.add("message", NOW - 2 * DAY, role="agent").add("message", NOW - 2 * DAY)
    v = b.view()
    assert (v["customer_messages_1h"], v["customer_messages_7d"]) == (1, 2)
    assert v["customer_messages_total"] == 2 and v["events_1h"] == 2


def test_sessions_count_by_start_time() -> None:
    b = Builder()
    # s1 starts 8 days ago (its session_started), runs into the 7-day window: counted in 30 d only.
    b.add("session_started", NOW - 8 * DAY, "s1").add("message", NOW - 6 * DAY, "s1")
    b.add("message", NOW - 3 * DAY, "s2")  # no session_started: first event is the start
    b.add("session_started", NOW - 31 * DAY, "s3")
    v = b.view()
    assert (v["sessions_7d"], v["sessions_30d"]) == (1, 2)


def test_time_since_last_contact_and_first_seen() -> None:
    b = Builder().add("message", NOW - 100, role="bot").add("rating", NOW - 5 * DAY)
    v = b.view()
    assert v["time_since_last_contact_s"] == pytest.approx(100)
    assert v["first_seen"] == pytest.approx(NOW - 5 * DAY)
    assert Builder().view()["time_since_last_contact_s"] is None


def test_recent_intents_keep_the_last_n_by_event_time_whatever_the_arrival() -> None:
    b = Builder()
    for i, intent in enumerate(["a", "b", "c", "d", "e"]):
        b.add("message", NOW - 100 + i, intent=intent)
    b.add("message", NOW - 10, intent="bot_side", role="bot")  # not a customer intent
    assert b.view()["recent_intents"] == ["c", "d", "e"]
    assert b.view(reverse=True)["recent_intents"] == ["c", "d", "e"]


def test_the_last_bot_message_is_kept_until_the_customer_replies() -> None:
    b = Builder().add("message", NOW - 90, text="hi", intent="greeting")
    b.add("message", NOW - 60, role="bot", text="Has your card arrived yet?", session="s2")
    b.add("message", NOW - 70, role="bot", text="An older question?")
    b.add("message", NOW - 80, role="agent", text="an agent's words are not the bot's")
    for reverse in (False, True):
        assert b.view(reverse=reverse)["last_bot_message"] == {
            "time": NOW - 60, "session_id": "s2", "text": "Has your card arrived yet?"
        }  # fmt: skip
    b.add("message", NOW - 30, text="no")  # the customer answered it
    assert b.view()["last_bot_message"] is None
    long = Builder().add("message", NOW - 5, role="bot", text="x" * 900 + " Did it help?")
    kept = long.view()["last_bot_message"]["text"]
    assert len(kept) == 500 and kept.endswith("Did it help?")


def test_a_state_written_before_bot_messages_were_kept_still_reads_and_applies() -> None:
    state = new_state()
    del state["bot"]
    record = FeatureRecord("u1", state, 0, 0, 0.0, 0.0)
    assert feature_view(record, None, NOW)["last_bot_message"] is None
    event = make_event("message", NOW - 5, event_id="b1", role="bot", text="Anything else?")
    apply_event(state, event, PARAMS)
    assert feature_view(record, None, NOW)["last_bot_message"]["text"] == "Anything else?"


def test_intent_counts_cover_customer_messages_of_the_last_30_days() -> None:
    b = Builder().add("message", NOW - 31 * DAY, intent="old")
    for intent in ("x", "y", "x"):
        b.add("message", NOW - DAY, intent=intent)
    b.add("message", NOW - DAY)
    v = b.view()
    assert v["intent_counts_30d"] == {"x": 2, "y": 1}
    assert v["top_intent_30d"] == "x"


def test_csat_average_and_ewma_follow_event_time() -> None:
    b = Builder().add("rating", NOW - 30, score=5).add("rating", NOW - 20, score=1)
    b.add("rating", NOW - 10, score=3)
    expected = 0.5 * 3 + 0.5 * (0.5 * 1 + 0.5 * 5)
    for reverse in (False, True):
        v = b.view(reverse=reverse)
        assert v["csat_count"] == 3 and v["csat_avg"] == 3.0
        assert v["csat_ewma"] == pytest.approx(expected)
    none = Builder().view()
    assert none["csat_avg"] is None and none["csat_ewma"] is None


def test_resolution_and_handoff_rates_are_per_session() -> None:
    b = Builder()
    b.add("resolution", NOW - 5 * HOUR, "s1", resolved=False)
    b.add("resolution", NOW - 4 * HOUR, "s1", resolved=True)  # the latest outcome counts
    b.add("resolution", NOW - 3 * HOUR, "s2", resolved=False).add("handoff", NOW - 3 * HOUR, "s2")
    b.add("message", NOW - 2 * HOUR, "s3")  # no outcome yet
    b.add("resolution", NOW - 40 * DAY, "s0", resolved=False)  # outside 30 d
    v = b.view()
    assert v["resolution_rate_30d"] == 0.5
    assert v["handoff_rate_30d"] == pytest.approx(1 / 3)


def test_unresolved_streak_counts_back_from_the_newest_session_with_an_outcome() -> None:
    b = Builder()
    b.add("resolution", NOW - 5 * DAY, "s1", resolved=False)
    b.add("resolution", NOW - 4 * DAY, "s2", resolved=True)
    b.add("resolution", NOW - 3 * DAY, "s3", resolved=False)
    b.add("message", NOW - 2 * DAY, "s4")
    b.add("resolution", NOW - 1 * DAY, "s5", resolved=False)
    assert b.view()["unresolved_streak"] == 2


def test_articles_viewed_feedback_and_resolutions() -> None:
    b = Builder()
    b.add("article_viewed", NOW - 30, article_id="kb-1").add(
        "article_viewed", NOW - 20, article_id="kb-2"
    )
    b.add("article_viewed", NOW - 10, article_id="kb-1")
    b.add("article_feedback", NOW - 9, article_id="kb-1", helpful=False)
    b.add("article_feedback", NOW - 8, article_id="kb-1", helpful=True)  # the latest vote counts
    b.add("article_feedback", NOW - 7, article_id="kb-2", helpful=False)
    b.add("message", NOW - 5 * HOUR, "a", intent="lost_card")
    b.add("message", NOW - 4 * HOUR, "a", intent="pin")  # not the session's (first) intent
    b.add("resolution", NOW - 4 * HOUR, "a", resolved=True, article_id="kb-7")
    b.add("message", NOW - 3 * HOUR, "b", intent="lost_card")
    b.add("resolution", NOW - 3 * HOUR, "b", resolved=True, article_id="kb-8")
    b.add("message", NOW - 2 * HOUR, "c", intent="lost_card")
    b.add("resolution", NOW - 2 * HOUR, "c", resolved=True, article_id="kb-8")
    b.add("resolution", NOW - HOUR, "d", resolved=True, article_id="kb-9")  # no intent
    b.add("resolution", NOW - HOUR, "e", resolved=False, article_id="kb-6")  # not resolved
    for reverse in (False, True):
        v = b.view(reverse=reverse)
        assert v["articles_viewed"] == ["kb-1", "kb-2"]
        assert (v["articles_helpful"], v["articles_unhelpful"]) == (["kb-1"], ["kb-2"])
        assert v["articles_resolved_by_intent"] == {"lost_card": ["kb-8", "kb-7"]}
        assert v["articles_resolved"] == ["kb-8", "kb-7", "kb-9"]


def test_preferred_channel_is_the_most_used_then_the_latest() -> None:
    b = Builder().add("message", NOW - 30, channel="email").add("message", NOW - 20, channel="chat")
    assert b.view()["preferred_channel"] == "chat"
    b.add("message", NOW - 40, channel="email")
    assert b.view()["preferred_channel"] == "email"
    assert Builder().view()["preferred_channel"] is None


def test_average_session_length_uses_start_and_end_markers_else_first_and_last() -> None:
    b = Builder()
    b.add("message", NOW - 2000, "s1").add("session_started", NOW - 1900, "s1")
    b.add("session_ended", NOW - 1300, "s1").add("rating", NOW - 1000, "s1")  # 600 s
    b.add("message", NOW - 500, "s2").add("message", NOW - 300, "s2")  # 200 s
    assert b.view()["avg_session_length_s_30d"] == pytest.approx(400)
    assert Builder().view()["avg_session_length_s_30d"] is None


def test_profile_attributes_are_carried_and_consent_hides_behaviour() -> None:
    b = Builder().add("message", NOW - 10, intent="x")
    profile = {
        "name": "Ada",
        "tier": "gold",
        "language": "de",
        "region": "EU",
        "products": ["card"],
        "attributes": {"age": 3},
    }
    v = b.view(profile=profile)
    assert (v["name"], v["tier"], v["language"], v["region"]) == ("Ada", "gold", "de", "EU")
    assert v["products"] == ["card"] and v["attributes"] == {"age": 3}
    withdrawn = b.view(profile={**profile, "consent": {"personalization": False}})
    assert withdrawn["personalization"] is False
    assert withdrawn["events_total"] == 0 and withdrawn["recent_intents"] == []
    assert withdrawn["tier"] == "gold"
    default = Builder().view()
    assert (default["tier"], default["language"], default["user_id"]) == ("standard", "en", "u1")


def test_view_without_record_reads_as_a_new_user() -> None:
    v = feature_view(None, None, NOW)
    assert v["events_total"] == 0 and v["segment"] == "new" and v["user_id"] is None
    assert orjson.loads(orjson.dumps(v)) == v


def test_view_of_recompute_equals_view_of_arrival_order() -> None:
    b = Builder()
    for i in range(20):
        b.add("message", NOW - i * HOUR, f"s{i // 4}", intent=f"i{i % 3}")
        b.add("rating", NOW - i * HOUR + 1, f"s{i // 4}", score=1 + i % 5)
    record = FeatureRecord("u1", recompute(b.events, PARAMS), 0, 0, 0.0, 0.0)
    assert feature_view(record, None, NOW) == b.view(reverse=True)


def test_context_vector_is_fixed_bounded_and_one_hot() -> None:
    b = Builder().add("rating", NOW - 10, score=1).add("resolution", NOW - 5, resolved=True)
    for view in (b.view(profile={"tier": "platinum"}), feature_view(None, None, NOW)):
        ctx = context_vector(view)
        assert tuple(ctx) == CONTEXT_KEYS
        assert all(0.0 <= x <= 1.0 for x in ctx.values())
        assert sum(ctx[k] for k in CONTEXT_KEYS if k.startswith("tier_")) == 1.0
        assert sum(ctx[k] for k in CONTEXT_KEYS if k.startswith("segment_")) >= 1.0
    ctx = context_vector(b.view(profile={"tier": "platinum"}))
    assert (ctx["csat"], ctx["csat_known"], ctx["resolution_rate"]) == (0.0, 1.0, 1.0)
    assert (ctx["tier_vip"], ctx["segment_at_risk"], ctx["segment_vip"]) == (1.0, 1.0, 1.0)
    assert ctx["recency"] == pytest.approx(math.exp(-5 / (7 * DAY)))
    empty = context_vector(feature_view(None, None, NOW))
    assert (empty["csat"], empty["csat_known"], empty["recency"]) == (0.5, 0.0, 0.0)
    assert empty["tier_standard"] == 1.0 and empty["segment_new"] == 1.0


def test_ties_in_event_time_are_broken_by_content_not_arrival() -> None:
    b = Builder()
    b.add("message", NOW - 50, "s1", intent="pin").add("message", NOW - 50, "s1", intent="card")
    b.add("resolution", NOW - 40, "s1", resolved=True, article_id="kb-2")
    b.add("resolution", NOW - 40, "s1", resolved=True, article_id="kb-1")
    b.add("resolution", NOW - 40, "s1", resolved=False)
    b.add("article_feedback", NOW - 30, article_id="kb-1", helpful=True)
    b.add("article_feedback", NOW - 30, article_id="kb-1", helpful=False)
    b.add("rating", NOW - 20, score=1).add("rating", NOW - 20, score=5)
    views = [b.view(reverse=False), b.view(reverse=True)]
    assert views[0] == views[1]
    v = views[0]
    assert v["articles_resolved_by_intent"] == {"card": ["kb-2"]}  # first intent by name
    assert v["articles_helpful"] == ["kb-1"]  # a tied vote: helpful wins
    assert v["recent_intents"] == ["card", "pin"]
    assert v["csat_ewma"] == pytest.approx(0.5 * 5 + 0.5 * 1)  # ties: lower score first


@settings(max_examples=150, deadline=None)
@given(
    events=event_streams(max_users=1),
    tier=st.sampled_from(("standard", "gold", "other")),
    consent=st.booleans(),
    hours_after=st.integers(0, 24 * 40),
)
def test_the_counter_view_is_the_feature_view_s_keys_with_the_same_values(
    events: list[dict], tier: str, consent: bool, hours_after: int
) -> None:
    """What the stream worker builds before each article and outcome event (instead of the
    whole view): equal on every key the counters and the segment rules read."""
    state = state_of(events)
    record = FeatureRecord("u0", state, partition=0, offset=0, event_time=0.0, updated_at=0.0)
    profile = {"tier": tier, "consent": {"personalization": consent}}
    now = T0 + hours_after * 3600.0
    full = feature_view(record, profile, now)
    assert counter_view(record, profile, now) == {k: full[k] for k in COUNTER_VIEW_KEYS}
    assert counter_view(None, None, now) == {
        k: feature_view(None, None, now)[k] for k in COUNTER_VIEW_KEYS
    }


@settings(max_examples=300, deadline=None)
@given(events=event_streams(max_users=1), data=st.data())
def test_session_and_intent_figures_follow_their_definitions(
    events: list[dict], data: st.DataObject
) -> None:
    """The windowed session figures and the 30-day intent counts, read straight off the
    state's sessions and customer messages as docs/features.md defines them; ``now`` is
    any hour, or exactly a window's width after an event (the windows' edges)."""
    state = state_of(events)
    edges = [ts + width for ts in state["ts"] for width in (0.0, 7 * DAY, 30 * DAY)]
    hours = st.integers(-24, 24 * 40).map(lambda h: T0 + h * HOUR)
    now = data.draw(st.sampled_from(edges) | hours if edges else hours)
    view = feature_view(FeatureRecord("u0", state, 0, 0, 0.0, 0.0), None, now)
    sessions = list(state["sessions"].values())
    recent = [s for s in sessions if now - 30 * DAY < sess.start(s) <= now]
    outcomes = [s[sess.RESOLVED] for s in recent if s[sess.RESOLVED] is not None]
    assert view["sessions_7d"] == sum(now - 7 * DAY < sess.start(s) <= now for s in sessions)
    assert view["sessions_30d"] == len(recent)
    assert view["resolution_rate_30d"] == (sum(outcomes) / len(outcomes) if outcomes else None)
    handed_off = sum(1 for s in recent if s[sess.HANDOFFS])
    assert view["handoff_rate_30d"] == (handed_off / len(recent) if recent else None)
    lengths = [max(0.0, sess.end(s) - sess.start(s)) for s in recent]
    assert view["avg_session_length_s_30d"] == (
        math.fsum(lengths) / len(lengths) if lengths else None
    )
    in_window = Counter(
        intent
        for ts, intent in zip(state["cm_ts"], state["cm_intent"], strict=True)
        if now - 30 * DAY < ts <= now and intent
    )
    ranked = sorted(in_window.items(), key=lambda kv: (-kv[1], kv[0]))
    assert list(view["intent_counts_30d"].items()) == ranked
    assert view["top_intent_30d"] == (ranked[0][0] if ranked else None)
