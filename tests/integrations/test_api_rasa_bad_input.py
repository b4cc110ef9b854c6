"""Rasa over HTTP, bad input: a clear 422 (or 413) naming the event and field, never a 500,
and nothing stored when the answer is 4xx (the events route is all or nothing)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tailorbot.errors import InvalidInput
from tailorbot.integrations.profiles import check_user_id
from tests.api.conftest import make_client
from tests.integrations.test_api_rasa import logged_events, rasa_client
from tests.integrations.test_nlg import rasa_nlg_request

EVENTS = "/v1/integrations/rasa/events"
NLG = "/v1/integrations/rasa/nlg"


@pytest.fixture
def api(tmp_path: Path) -> Iterator[TestClient]:
    with rasa_client(tmp_path, "tier_slot=tier", "plan=attributes.plan") as client:
        yield client


def post_json(client: TestClient, path: str, body: Any):
    # json.dumps keeps a lone surrogate as its \ud800 escape (httpx's json= cannot encode it)
    data = json.dumps(body).encode()
    return client.post(path, content=data, headers={"Content-Type": "application/json"})


def profile_of(client: TestClient, user_id: str) -> dict | None:
    return client.app.state.runtime.stores.profiles.get(user_id)


def slot(sender: str, name: str, value: Any, **extra: Any) -> dict:
    return {
        "event": "slot",
        "sender_id": sender,
        "timestamp": time.time(),
        "name": name,
        "value": value,
        **extra,
    }


def shared_reason(user_id: str) -> str:
    """What the one shared user-id check (events', the profile routes') says of ``user_id``."""
    with pytest.raises(InvalidInput) as caught:
        check_user_id(user_id)
    return "; ".join(p.reason for p in caught.value.problems)


@pytest.mark.parametrize(
    ("sender", "reason"),
    [
        ("jane@example.com", "looks like an e-mail address"),
        ("q4\n", "should match pattern"),
        ("q4\r\n", "should match pattern"),
        ("q" * 129, "at most 128 characters"),
    ],
)
def test_a_sender_id_events_would_refuse_is_refused_with_its_index(
    api: TestClient, sender: str, reason: str
) -> None:
    said = {"event": "user", "sender_id": sender, "timestamp": time.time(), "text": "hello"}
    batch = [slot("ok-1", "plan", "5G"), slot(sender, "plan", "5G"), said]
    response = post_json(api, EVENTS, batch)
    assert response.status_code == 422, response.text
    problems = response.json()["problems"]
    assert [(p["index"], p["field"]) for p in problems] == [(1, "sender_id"), (2, "sender_id")]
    # the wording of the shared check, word for word
    assert [p["reason"] for p in problems] == [shared_reason(sender)] * 2
    assert reason in problems[0]["reason"]
    assert profile_of(api, sender) is None and profile_of(api, "ok-1") is None
    assert logged_events(api, sender) == [] and logged_events(api, "ok-1") == []
    envelope = {
        "conversation_id": sender,
        "timestamp": time.time(),
        "slot_set": {"name": "plan", "value": "5G"},
    }
    response = post_json(api, EVENTS, [envelope])
    assert response.status_code == 422, response.text
    assert response.json()["problems"] == [
        {"index": 0, "field": "conversation_id", "reason": shared_reason(sender)}
    ]
    assert profile_of(api, sender) is None


def test_a_bad_slot_value_stores_no_event(api: TestClient) -> None:
    user = {"event": "user", "sender_id": "q1", "timestamp": time.time(), "text": "hello there"}
    response = post_json(api, EVENTS, [user, slot("q1", "tier_slot", "x" * 100)])
    assert response.status_code == 422, response.text
    assert logged_events(api, "q1") == []
    assert profile_of(api, "q1") is None
    (problem,) = response.json()["problems"]
    assert (problem["index"], problem["field"]) == (1, "value")
    assert "tier" in problem["reason"] and "64" in problem["reason"]


def test_a_bad_slot_value_stores_no_other_profile(api: TestClient) -> None:
    batch = [
        slot("q2", "tier_slot", "gold"),
        slot("q3", "plan", "5G"),
        slot("q3", "tier_slot", "x" * 100),
    ]
    response = post_json(api, EVENTS, batch)
    assert response.status_code == 422, response.text
    assert profile_of(api, "q2") is None and profile_of(api, "q3") is None
    assert [(p["index"], p["field"]) for p in response.json()["problems"]] == [(2, "value")]
    # the same batch without the bad value is stored whole
    response = post_json(api, EVENTS, batch[:2])
    assert response.status_code == 202, response.text
    assert response.json()["profiles_updated"] == 2
    assert profile_of(api, "q2")["tier"] == "gold"
    assert profile_of(api, "q3")["attributes"] == {"plan": "5G"}


def test_too_many_attributes_for_the_stored_profile_is_refused_whole(tmp_path: Path) -> None:
    with make_client(
        tmp_path,
        rasa_slot_attributes=("a=attributes.a", "b=attributes.b"),
        max_profile_attributes=1,
    ) as api:
        batch = [slot("q7", "a", 1), slot("q8", "a", 1), slot("q8", "b", 2)]
        response = post_json(api, EVENTS, batch)
        assert response.status_code == 422, response.text
        (problem,) = response.json()["problems"]
        assert problem["index"] == 2 and "at most 1" in problem["reason"]
        assert profile_of(api, "q7") is None and profile_of(api, "q8") is None


@pytest.mark.parametrize("timestamp", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-14:00"])
def test_a_timestamp_outside_the_utc_range_is_refused(api: TestClient, timestamp: str) -> None:
    user = {"event": "user", "sender_id": "q5", "timestamp": timestamp, "text": "hello"}
    response = post_json(api, EVENTS, [user])
    assert response.status_code == 422, response.text
    assert [(p["index"], p["field"]) for p in response.json()["problems"]] == [(0, "timestamp")]


def post_deep(client: TestClient, batch: list[dict]):
    """``batch`` with each "DEEP" a list nested 1000 deep (within what the JSON reader takes,
    beyond what json.dumps writes)."""
    body = json.dumps(batch).replace('"DEEP"', "[" * 1000 + "]" * 1000)
    return client.post(EVENTS, content=body, headers={"Content-Type": "application/json"})


def test_deeply_nested_values_are_refused(api: TestClient) -> None:
    deep_text = "[" * 3000 + "]" * 3000
    memory = {
        "conversation_id": "q6",
        "timestamp": time.time(),
        "memory_set": {"name": "plan", "value_json": deep_text},
    }
    response = post_json(api, EVENTS, [memory])
    assert response.status_code == 422, response.text
    assert [(p["index"], p["field"]) for p in response.json()["problems"]] == [(0, "value_json")]
    deep = "DEEP"
    batch = [
        slot("q6", "plan", deep),
        {"event": "user", "sender_id": deep, "timestamp": time.time(), "text": "hi"},
    ]
    response = post_deep(api, batch)
    assert response.status_code == 422, response.text
    assert [(p["index"], p["field"]) for p in response.json()["problems"]] == [
        (0, "value"),
        (1, "sender_id"),
    ]
    # where a nested value names no type, slot or action tailorbot knows: skipped
    skipped = [
        slot("q6", deep, "5G"),
        {"event": deep, "sender_id": "q6", "timestamp": time.time()},
        {"event": "action", "sender_id": "q6", "timestamp": time.time(), "name": deep},
    ]
    response = post_deep(api, skipped)
    assert response.status_code == 202, response.text
    assert response.json()["skipped"] == 3
    assert profile_of(api, "q6") is None


def test_an_empty_batch_is_refused_like_on_the_events_route(api: TestClient) -> None:
    for body in ([], {"events": []}):
        response = api.post(EVENTS, json=body)
        assert response.status_code == 422, response.text
        assert response.json()["problems"] == [
            {"index": None, "field": "events", "reason": "empty batch"}
        ]


@pytest.mark.parametrize(
    ("sender", "text", "field"),
    [
        ("jane@example.com", "hi", "tracker.sender_id"),
        ("u9\n", "hi", "tracker.sender_id"),
        ("u9", "hi \ud800", "tracker.latest_message.text"),
    ],
)
def test_nlg_refuses_what_personalize_would(
    api: TestClient, sender: str, text: str, field: str
) -> None:
    request = rasa_nlg_request()
    request["tracker"]["sender_id"] = sender
    request["tracker"]["latest_message"]["text"] = text
    response = post_json(api, NLG, request)
    assert response.status_code == 422, response.text
    assert field in [p["field"] for p in response.json()["problems"]]
    assert logged_events(api, sender) == []


def test_a_too_long_nlg_message_names_rasas_field(api: TestClient) -> None:
    request = rasa_nlg_request()
    limit = api.app.state.runtime.settings.max_text_chars
    request["tracker"]["latest_message"]["text"] = "x" * (limit + 1)
    response = post_json(api, NLG, request)
    assert response.status_code == 413, response.text
    assert [p["field"] for p in response.json()["problems"]] == ["tracker.latest_message.text"]


def test_a_problem_the_event_schema_finds_names_the_rasa_events_index(api: TestClient) -> None:
    batch = [
        {"event": "action", "sender_id": "q8", "timestamp": time.time(), "name": "action_listen"},
        slot("q8", "plan", "5G"),
        {"event": "user", "sender_id": "q8", "timestamp": 1.0, "text": "hello from 1970"},
    ]  # the first two become no event: the third is the first event the log is given
    response = post_json(api, EVENTS, batch)
    assert response.status_code == 422, response.text
    assert [(p["index"], p["field"]) for p in response.json()["problems"]] == [(2, "timestamp")]
    assert profile_of(api, "q8") is None
