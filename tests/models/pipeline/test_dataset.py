from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tailorbot.models.intent.dataset import DatasetError
from tailorbot.models.pipeline.dataset import build_dataset, read_rows, write_rows
from tests.models.pipeline.support import support_log

START = datetime(2026, 1, 1, tzinfo=UTC)


def _event(i: int, kind: str, minute: int, session: int) -> dict[str, Any]:
    event: dict[str, Any] = {
        "type": kind,
        "event_id": f"e{i}",
        "user_id": "u1",
        "session_id": f"s{session}",
        "timestamp": (START + timedelta(minutes=minute)).isoformat(),
        "channel": "chat" if i % 2 else "email",
    }
    if kind == "message":
        event |= {"role": "customer", "text": f"text {i}", "intent": f"i{i % 3}"}
    elif kind == "rating":
        event["score"] = 1 + i % 5
    elif kind == "resolution":
        event["resolved"] = bool(i % 2)
    elif kind == "article_viewed":
        event["article_id"] = f"a{i % 4}"
    return event


streams = st.lists(
    st.tuples(
        st.sampled_from(["message", "rating", "resolution", "article_viewed", "session_started"]),
        st.integers(0, 3 * 24 * 60),  # minutes: collisions happen, windows matter
        st.integers(0, 4),
        st.booleans(),  # labelled, when a message
    ),
    min_size=1,
    max_size=40,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(streams)
def test_no_event_at_or_after_a_message_leaks_into_its_row(spec: list) -> None:
    events, labelled = [], []
    for i, (kind, minute, session, label) in enumerate(spec):
        events.append(_event(i, kind, minute, session))
        if kind == "message" and label:
            labelled.append(events[-1])
            events.append(
                {
                    **_event(1000 + i, "session_started", minute + 600, session),
                    "type": "intent_label",
                    "intent": "gold",
                    "message_event_id": f"e{i}",
                }
            )
    rows = build_dataset(events)
    assert {r["message_event_id"] for r in rows} == {m["event_id"] for m in labelled}
    for row in rows:
        message = next(m for m in labelled if m["event_id"] == row["message_event_id"])
        before = [
            e
            for e in events
            if e["type"] != "intent_label"
            and datetime.fromisoformat(e["timestamp"]).timestamp() < row["epoch"]
        ]
        label = next(e for e in events if e.get("message_event_id") == message["event_id"])
        alone = build_dataset([*before, message, label])
        assert len(alone) == 1
        assert alone[0]["features"] == row["features"]  # later events change nothing
        assert alone[0]["returning"] == row["returning"]
        assert row["features"] == _features_from(before, row["epoch"])  # nor the same moment


def _features_from(events: list[dict[str, Any]], now: float) -> dict[str, Any]:
    """The features recomputed from scratch out of ``events`` only, read at ``now``."""
    import json

    from tailorbot.features.context_vector import context_vector
    from tailorbot.features.state import recompute
    from tailorbot.features.view import feature_view
    from tailorbot.models.pipeline.dataset import ROW_FEATURES
    from tailorbot.store.base import FeatureRecord

    record = FeatureRecord("u1", recompute(events), 0, 0, event_time=now, updated_at=now)
    view = feature_view(record, None, now=now)
    expected = {name: view.get(name) for name in ROW_FEATURES}
    expected["context"] = context_vector(view)
    return json.loads(json.dumps(expected))


def test_window_selects_rows_but_history_feeds_features() -> None:
    events, profiles = support_log(users=6, contacts=5)
    everything = build_dataset(events, profiles)
    since = START + timedelta(days=10)
    late = build_dataset(events, profiles, since=since)
    assert late and len(late) < len(everything)
    assert all(r["epoch"] >= since.timestamp() for r in late)
    by_id = {r["message_event_id"]: r for r in everything}
    assert all(r["features"] == by_id[r["message_event_id"]]["features"] for r in late)
    assert any(r["features"]["customer_messages_total"] > 0 for r in late)


def test_recency_weights_halve_per_half_life() -> None:
    events, profiles = support_log(users=4, contacts=4)
    until = START + timedelta(days=30)
    rows = build_dataset(events, profiles, until=until, half_life_days=10)
    for row in rows:
        age_days = (until.timestamp() - row["epoch"]) / 86400
        assert abs(row["weight"] - 0.5 ** (age_days / 10)) < 1e-5


def test_rows_carry_profile_segments_and_round_trip(tmp_path) -> None:  # type: ignore[no-untyped-def]
    events, profiles = support_log(users=6, contacts=3)
    rows = build_dataset(events, profiles)
    assert {r["language"] for r in rows} == {"en", "de"}
    assert {r["tier"] for r in rows} == {"gold", "standard"}
    assert any(r["returning"] for r in rows) and not all(r["returning"] for r in rows)
    path = tmp_path / "rows.jsonl"
    write_rows(rows, path)
    assert read_rows(path) == rows


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"text": "x", "intent": "y"}\n\nnot json\n', r"rows.jsonl:3: invalid JSON"),
        ('{"text": "x", "intent": "y"}\n[1]\n', r"rows.jsonl:2: expected a JSON object"),
        ('{"text": "x"}\n', r"rows.jsonl:1: missing field; each object needs 'text' and 'intent'"),
    ],
)
def test_bad_rows_name_their_line(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "rows.jsonl"
    path.write_text(content)
    with pytest.raises(DatasetError, match=message):
        read_rows(path)


def test_users_who_opted_out_of_analytics_give_no_row() -> None:
    events, profiles = support_log(users=6, contacts=4)
    until = START + timedelta(days=60)  # fixed: the weights do not depend on the rows kept
    everything = build_dataset(events, profiles, until=until)
    users = sorted({r["user_id"] for r in everything})
    opted_out, no_personalization = users[0], users[1]
    profiles = {
        **profiles,
        opted_out: {**profiles.get(opted_out, {}), "consent": {"analytics": False}},
        # personalization is another consent: the user's events still train
        no_personalization: {
            **profiles.get(no_personalization, {}),
            "consent": {"personalization": False, "analytics": True},
        },
    }
    rows = build_dataset(events, profiles, until=until)
    assert opted_out not in {r["user_id"] for r in rows}
    kept = [r for r in everything if r["user_id"] != opted_out]
    assert [r["message_event_id"] for r in rows] == [r["message_event_id"] for r in kept]
    others = {opted_out, no_personalization}  # (the view hides a non-consenter's features)
    assert [r for r in rows if r["user_id"] not in others] == [
        r for r in kept if r["user_id"] not in others
    ]
