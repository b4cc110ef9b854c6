"""Rasa over HTTP: tracker events become features, the NLG endpoint personalizes."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tailorbot.events.codec import decode_event
from tests.api.conftest import make_client
from tests.api.support import wait_until, written_decision
from tests.integrations.test_nlg import rasa_nlg_request
from tests.integrations.test_rasa import classic_tracker
from tests.services.decisions.conftest import OUT_OF_SCOPE_MESSAGES, SEED, save_model


def rasa_client(tmp_path: Path, *slots: str) -> TestClient:
    """A server (to enter) with the small intent model, its stream worker running, and the
    Rasa ``slots`` mapped to profile fields."""
    save_model(tmp_path)
    return make_client(tmp_path, seed=SEED, bandit_sync_s=0.0, rasa_slot_attributes=slots)


@pytest.fixture
def api(tmp_path: Path) -> Iterator[TestClient]:
    with rasa_client(tmp_path, "plan=attributes.plan") as client:
        yield client


def logged_events(client: TestClient, user_id: str) -> list[dict]:
    log = client.app.state.runtime.log
    partition = log.partition_for(user_id)
    events = [decode_event(r.value) for r in log.read_all(partition)]
    return [e for e in events if e["user_id"] == user_id]


def test_tracker_events_become_features(api: TestClient) -> None:
    t0 = time.time() - 30
    response = api.post("/v1/integrations/rasa/events", json=classic_tracker("c-42", t0))
    assert response.status_code == 202, response.text
    body = response.json()
    assert (body["accepted"], body["skipped"], body["profiles_updated"]) == (5, 4, 1)

    def features() -> dict | None:
        answer = api.get("/v1/users/c-42/features")
        return answer.json()["features"] if answer.status_code == 200 else None

    view = wait_until(
        lambda: (f := features()) and f["events_total"] == 5 and f,
        "the Rasa events in the features",
    )
    assert view["recent_intents"] == ["card_arrival"]
    assert view["customer_messages_total"] == 1 and view["sessions_30d"] == 1
    assert view["handoff_rate_30d"] == 1.0
    profile = api.app.state.runtime.stores.profiles.get("c-42")
    assert profile["attributes"] == {"plan": "Unlimited 5G"}
    # a single event (not a list) is accepted too, and a re-sent one is not counted twice
    again = api.post("/v1/integrations/rasa/events", json=classic_tracker("c-42", t0)[2])
    assert again.status_code == 202 and again.json()["event_ids"] == body["event_ids"][1:2]


def test_bad_rasa_events_are_refused_whole(api: TestClient) -> None:
    good = classic_tracker("c-7", time.time())[2]
    response = api.post(
        "/v1/integrations/rasa/events",
        json=[good, {"event": "user", "timestamp": time.time(), "text": "hi"}],
    )
    assert response.status_code == 422
    assert response.json()["problems"] == [{"index": 1, "field": "sender_id", "reason": "missing"}]
    assert logged_events(api, "c-7") == []
    not_json = api.post(
        "/v1/integrations/rasa/events",
        content=b"{nope",
        headers={"content-type": "application/json"},
    )
    assert not_json.status_code == 400


def test_nlg_answers_with_a_personalized_variant(api: TestClient) -> None:
    api.put("/v1/users/user_0", json={"name": "Ada", "tier": "gold"})
    request = rasa_nlg_request()
    request["tracker"]["latest_message"]["text"] = "my new card has still not arrived"
    user_event = {
        "event": "user",
        "timestamp": time.time(),
        "text": "my new card has still not arrived",
        "parse_data": {"intent": {"name": "card_arrival", "confidence": 0.9}},
    }
    request["tracker"]["events"].append(user_event)
    response = api.post("/v1/integrations/rasa/nlg", json=request)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert set(answer) == {"text", "buttons", "image", "elements", "attachments", "custom"}
    assert "Ada" in answer["text"]
    # the decision and its message event are written in batches, off the request path
    messages = wait_until(
        lambda: [e for e in logged_events(api, "user_0") if e["type"] == "message"],
        "the message event in the log",
    )
    assert len(messages) == 1
    decision = written_decision(api, messages[0]["metadata"]["decision_id"])
    assert decision["intent"] == "card_arrival" and decision["variant"] in (
        "concise",
        "step_by_step",
        "empathetic",
    )
    rendered = api.app.state.decider.models.composer.kb.template(decision["template_id"])
    assert rendered is not None
    # the same user event arriving from Rasa's event broker is the same event: counted once
    broker = api.post("/v1/integrations/rasa/events", json={**user_event, "sender_id": "user_0"})
    assert broker.json()["event_ids"] == [messages[0]["event_id"]]


def test_nlg_reads_a_short_reply_as_the_answer_to_the_bots_question(api: TestClient) -> None:
    request = rasa_nlg_request(response="utter_anything")
    reply = "it still hasn't"  # alone: an unsure guess (the small model has no deny intent)
    request["tracker"]["latest_message"] = {"text": reply}
    request["tracker"]["events"] += [
        {"event": "bot", "timestamp": time.time() - 5, "text": "Has your new card arrived yet?"},
        {"event": "user", "timestamp": time.time(), "text": reply},
    ]
    response = api.post("/v1/integrations/rasa/nlg", json=request)
    assert response.status_code == 200, response.text
    messages = wait_until(
        lambda: [e for e in logged_events(api, "user_0") if e["type"] == "message"],
        "the message event in the log",
    )
    decision = written_decision(api, messages[0]["metadata"]["decision_id"])
    assert (decision["intent"], decision["follow_up"]) == ("card_arrival", "continuation")


def test_nlg_uses_the_template_named_like_the_response(api: TestClient) -> None:
    template = {
        "intents": [],
        "variants": {
            "concise": "Hi {name}, welcome to {brand}!",
            "step_by_step": "Hi {name}! 1. Ask {brand} anything.",
            "empathetic": "Hi {name}, lovely to see you at {brand}.",
        },
    }
    assert api.put("/v1/kb/templates/utter_greet", json=template).status_code == 200
    request = rasa_nlg_request(response="utter_greet")
    request["tracker"]["latest_message"] = {}  # no customer message yet (session start)
    response = api.post("/v1/integrations/rasa/nlg", json=request)
    assert response.status_code == 200, response.text
    assert "Tailor Bank" in response.json()["text"]
    assert logged_events(api, "user_0") == []  # no customer message to log


def test_nlg_fallback_and_bad_requests(api: TestClient) -> None:
    request = rasa_nlg_request(response="utter_default")
    request["tracker"]["latest_message"]["text"] = OUT_OF_SCOPE_MESSAGES[0]
    request["tracker"]["latest_message"]["intent"] = {"name": "nlu_fallback", "confidence": 0.2}
    response = api.post("/v1/integrations/rasa/nlg", json=request)
    assert response.status_code == 200
    assert "Tailor Bank" in response.json()["text"]  # the fallback template names the brand
    bad = api.post("/v1/integrations/rasa/nlg", json={"tracker": {}})
    assert bad.status_code == 422
    assert {p["field"] for p in bad.json()["problems"]} == {"response", "tracker.sender_id"}


def test_openai_tools(api: TestClient) -> None:
    tools = api.get("/v1/integrations/openai-tools")
    assert tools.status_code == 200
    assert [t["function"]["name"] for t in tools.json()] == [
        "tailorbot_personalize",
        "tailorbot_feedback",
    ]
    flat = api.get("/v1/integrations/openai-tools", params={"style": "responses"}).json()
    assert flat[0]["name"] == "tailorbot_personalize"
    assert api.get("/v1/integrations/openai-tools", params={"style": "x"}).status_code == 422
