"""A Chatwoot conversation end to end: tailorbot's webhook, the decision service, and a real
HTTP server standing in for Chatwoot's API that records what tailorbot calls."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tailorbot.integrations.chatwoot import sign
from tests.api.conftest import make_client
from tests.api.support import wait_until, written_decision
from tests.helpers import packed_statistics
from tests.integrations.chatwoot_server import RecordingChatwoot
from tests.integrations.payloads import conversation_resolved, csat_submitted, message_created
from tests.integrations.test_api_rasa import logged_events
from tests.services.decisions.conftest import OUT_OF_SCOPE_MESSAGES, SEED, save_model

SECRET = "cw-webhook-secret"
MESSAGES = "/api/v1/accounts/1/conversations/{}/messages"
TOGGLE = "/api/v1/accounts/1/conversations/{}/toggle_status"


@pytest.fixture
def chatwoot() -> Iterator[RecordingChatwoot]:
    with RecordingChatwoot() as server:
        yield server


@pytest.fixture
def api(tmp_path: Path, chatwoot: RecordingChatwoot) -> Iterator[TestClient]:
    save_model(tmp_path)
    with make_client(
        tmp_path,
        seed=SEED,
        bandit_sync_s=0.0,
        chatwoot_url=chatwoot.url,
        chatwoot_token="bot-token",
        chatwoot_secret=SECRET,
        api_key="tailorbot-key",  # the webhook does not need it: its signature counts
    ) as client:
        yield client


def post_webhook(client: TestClient, payload: dict, *, secret: str = SECRET, age_s: float = 0):
    body = json.dumps(payload).encode()
    timestamp = str(int(time.time() - age_s))
    headers = {
        "Content-Type": "application/json",
        "X-Chatwoot-Timestamp": timestamp,
        "X-Chatwoot-Signature": sign(secret, body, timestamp),
    }
    return client.post("/v1/integrations/chatwoot/webhook", content=body, headers=headers)


def sent(client: TestClient) -> None:
    """Every call the webhooks queued is done (the client sends in the background; the
    recording server keeps a call before it answers): what it holds now is all it gets."""
    assert client.app.state.runtime.chatwoot.join(timeout_s=60)


def calls_to(chatwoot: RecordingChatwoot, path: str, count: int) -> list:
    return wait_until(
        lambda: (
            (found := [c for c in chatwoot.calls if c.path == path])
            and len(found) >= count
            and found
        ),
        f"{count} call(s) to {path}",
    )


def test_a_conversation(api: TestClient, chatwoot: RecordingChatwoot) -> None:
    runtime = api.app.state.runtime
    # 1. the customer writes: personalized reply through Chatwoot's messages API
    answer = post_webhook(
        api, message_created("my new card has still not arrived", custom={"plan": "metal"})
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["action"] == "replied"
    decision_id = answer.json()["decision_id"]
    (reply,) = calls_to(chatwoot, MESSAGES.format(10), 1)
    assert reply.token == "bot-token"
    assert reply.body["message_type"] == "outgoing" and reply.body["private"] is False
    decision = written_decision(api, decision_id)
    assert decision["intent"] == "card_arrival"
    assert (decision["user_id"], decision["session_id"]) == ("chatwoot-14", "chatwoot-1-10")
    assert "Ada" in reply.body["content"]  # the contact's name went into the profile
    profile = runtime.stores.profiles.get("chatwoot-14")
    assert profile["name"] == "Ada" and profile["attributes"] == {"plan": "metal"}

    # 2. the CSAT survey answer: a reward for the bandit on that decision
    namespace = api.app.state.decider.models.policy.namespace
    before = packed_statistics(runtime.stores.counters, namespace)
    csat = post_webhook(api, csat_submitted(5))
    assert csat.json() == {"action": "feedback", "decision_id": decision_id, "applied": True}
    stored = runtime.stores.decisions.get(decision_id)
    assert stored["feedback"]["rating"] == 5 and stored["feedback"]["reward"] > 0
    after = packed_statistics(runtime.stores.counters, namespace)
    assert after != before  # the bandit's shared statistics learned from the rating
    assert post_webhook(api, csat_submitted(1)).json()["applied"] is False  # once per decision

    # 3. resolved: a resolution event in the log
    resolved = post_webhook(api, conversation_resolved())
    assert resolved.json()["action"] == "resolved"
    types = [e["type"] for e in logged_events(api, "chatwoot-14")]
    assert types.count("resolution") == 1 and "rating" in types


def test_fallback_hands_over_to_the_agents(api: TestClient, chatwoot: RecordingChatwoot) -> None:
    answer = post_webhook(api, message_created(OUT_OF_SCOPE_MESSAGES[0], conversation_id=11))
    assert answer.json()["action"] == "handoff"
    (reply,) = calls_to(chatwoot, MESSAGES.format(11), 1)
    (toggle,) = calls_to(chatwoot, TOGGLE.format(11), 1)
    assert toggle.body == {"status": "open"} and toggle.token == "bot-token"
    assert "Tailor Bank" in reply.body["content"]  # the KB's brand, from its kb.yaml
    order = [c.path for c in chatwoot.calls]
    assert order.index(MESSAGES.format(11)) < order.index(TOGGLE.format(11))
    types = [e["type"] for e in logged_events(api, "chatwoot-14")]
    assert "handoff" in types


@pytest.mark.parametrize(
    "change",
    [{"secret": "wrong-secret"}, {"age_s": 3600}, {"unsigned": True}],
)
def test_bad_signatures_are_refused_and_nothing_is_stored(
    api: TestClient, chatwoot: RecordingChatwoot, change: dict
) -> None:
    payload = message_created("my new card has still not arrived", contact_id=99)
    if change.get("unsigned"):
        answer = api.post("/v1/integrations/chatwoot/webhook", json=payload)
    else:
        answer = post_webhook(api, payload, **change)
    assert answer.status_code == 401, answer.text
    assert answer.json()["error"] == "unauthorized"
    sent(api)
    assert chatwoot.calls == []
    assert logged_events(api, "chatwoot-99") == []
    assert api.app.state.runtime.stores.profiles.get("chatwoot-99") is None


@pytest.mark.parametrize(
    ("query", "status"), [("", 401), ("?api_key=wrong", 403), ("?api_key=tailorbot-key", 200)]
)
def test_without_a_secret_the_api_key_in_the_url_authenticates(
    tmp_path: Path, chatwoot: RecordingChatwoot, query: str, status: int
) -> None:
    save_model(tmp_path)
    with make_client(
        tmp_path,
        seed=SEED,
        chatwoot_url=chatwoot.url,
        chatwoot_token="bot-token",
        api_key="tailorbot-key",  # and no chatwoot_secret: Chatwoot does not sign
    ) as client:
        payload = message_created("my new card has still not arrived", contact_id=98)
        answer = client.post(f"/v1/integrations/chatwoot/webhook{query}", json=payload)
        assert answer.status_code == status, answer.text
        if status != 200:
            assert "?api_key=" in answer.json()["message"]
            sent(client)
            assert chatwoot.calls == []
            assert logged_events(client, "chatwoot-98") == []
            assert client.app.state.runtime.stores.profiles.get("chatwoot-98") is None
        else:
            assert answer.json()["action"] == "replied"


def test_the_bots_own_messages_are_ignored(api: TestClient, chatwoot: RecordingChatwoot) -> None:
    outgoing = {**message_created("Hi Ada, this should help"), "message_type": "outgoing"}
    answer = post_webhook(api, outgoing)
    assert answer.status_code == 200
    assert answer.json()["action"] == "ignored"
    assert post_webhook(api, csat_submitted(4, conversation_id=77)).json()["action"] == "ignored"
    sent(api)
    assert chatwoot.calls == []


def test_without_a_chatwoot_configuration(tmp_path: Path) -> None:
    save_model(tmp_path)
    with make_client(tmp_path, seed=SEED) as client:
        answer = client.post(
            "/v1/integrations/chatwoot/webhook", json=message_created("card not arrived")
        )
        assert answer.status_code == 503
        assert "TAILORBOT_CHATWOOT_URL" in answer.json()["message"]


@pytest.mark.parametrize(
    ("change", "action"),
    [
        ({"account": {"id": "²"}}, "ignored"),
        ({"sender": {"id": "1" * 5000}}, "replied"),
        ({"sender": {"id": "1" * 200, "type": "contact"}}, "replied"),
    ],
)
def test_unreadable_ids_are_not_a_server_error(
    api: TestClient, chatwoot: RecordingChatwoot, change: dict, action: str
) -> None:
    answer = post_webhook(api, {**message_created("my card has not arrived"), **change})
    assert answer.status_code == 200, answer.text
    assert answer.json()["action"] == action
    if action == "replied":  # the conversation's contact (contact_inbox) is the user
        decision = written_decision(api, answer.json()["decision_id"])
        assert decision["user_id"] == "chatwoot-14"


def test_a_too_long_message_stores_nothing(api: TestClient, chatwoot: RecordingChatwoot) -> None:
    limit = api.app.state.runtime.settings.max_text_chars
    payload = message_created("x" * (limit + 1), contact_id=77, custom={"plan": "metal"})
    answer = post_webhook(api, payload)
    assert answer.status_code == 413, answer.text
    assert api.app.state.runtime.stores.profiles.get("chatwoot-77") is None
    sent(api)
    assert chatwoot.calls == []
    assert logged_events(api, "chatwoot-77") == []
    assert answer.json()["problems"][0]["field"] == "content"


def test_a_redelivered_message_is_answered_once(
    api: TestClient, chatwoot: RecordingChatwoot
) -> None:
    payload = message_created("my new card has still not arrived", message_id=200)
    first = post_webhook(api, payload)
    again = post_webhook(api, payload)  # Chatwoot retries a delivery that timed out
    assert first.json()["action"] == "replied"
    assert again.json() == {"action": "duplicate", "decision_id": first.json()["decision_id"]}
    calls_to(chatwoot, MESSAGES.format(10), 1)
    later = post_webhook(api, message_created("and where is my refund?", message_id=201))
    assert later.json()["action"] == "replied"
    calls_to(chatwoot, MESSAGES.format(10), 2)
    sent(api)
    assert len([c for c in chatwoot.calls if c.path == MESSAGES.format(10)]) == 2
    for answer in (first, later):  # its message event is logged before the decision is stored
        written_decision(api, answer.json()["decision_id"])
    messages = [e for e in logged_events(api, "chatwoot-14") if e["type"] == "message"]
    assert len(messages) == 2


def test_an_open_conversation_is_left_to_the_agents(
    api: TestClient, chatwoot: RecordingChatwoot
) -> None:
    payload = message_created("my new card has still not arrived", contact_id=31)
    payload["conversation"]["status"] = "open"  # handed over, or taken by an agent
    answer = post_webhook(api, payload)
    assert answer.status_code == 200
    assert answer.json()["action"] == "ignored" and "'open'" in answer.json()["reason"]
    sent(api)
    assert chatwoot.calls == []
    assert logged_events(api, "chatwoot-31") == []


def test_a_message_without_text_is_handed_to_the_agents(
    api: TestClient, chatwoot: RecordingChatwoot
) -> None:
    payload = message_created("", conversation_id=12, message_id=300)
    payload["content"] = None
    payload["attachments"] = [{"id": 1, "file_type": "image", "data_url": "http://x/1.png"}]
    answer = post_webhook(api, payload)
    assert answer.json() == {"action": "handoff", "decision_id": None, "queued": True}
    (toggle,) = calls_to(chatwoot, TOGGLE.format(12), 1)
    assert toggle.body == {"status": "open"}
    assert not [c for c in chatwoot.calls if c.path == MESSAGES.format(12)]
    handoffs = [e for e in logged_events(api, "chatwoot-14") if e["type"] == "handoff"]
    assert [e["reason"] for e in handoffs] == ["a message without text"]
    assert post_webhook(api, payload).json()["action"] == "duplicate"


def test_after_a_handoff_the_agents_outcome_is_no_reward_for_the_bot(
    api: TestClient, chatwoot: RecordingChatwoot
) -> None:
    runtime = api.app.state.runtime
    answer = post_webhook(api, message_created(OUT_OF_SCOPE_MESSAGES[0], conversation_id=13))
    assert answer.json()["action"] == "handoff"
    decision_id = answer.json()["decision_id"]
    namespace = api.app.state.decider.models.policy.namespace
    before = packed_statistics(runtime.stores.counters, namespace)
    csat = post_webhook(api, csat_submitted(5, conversation_id=13))
    assert csat.json() == {"action": "ignored", "reason": "the agents had the conversation"}
    resolved = post_webhook(api, conversation_resolved(conversation_id=13))
    assert resolved.json() == {"action": "resolved", "decision_id": decision_id, "applied": False}
    assert packed_statistics(runtime.stores.counters, namespace) == before
    assert "feedback" not in (runtime.stores.decisions.get(decision_id) or {})
    types = [e["type"] for e in logged_events(api, "chatwoot-14")]
    assert types.count("resolution") == 1  # the conversation did end resolved


def test_each_resolution_is_logged_once(api: TestClient, chatwoot: RecordingChatwoot) -> None:
    answer = post_webhook(api, message_created("my new card has still not arrived"))
    assert answer.json()["action"] == "replied"
    resolved = conversation_resolved()
    first = post_webhook(api, resolved)
    assert first.json()["applied"] is True  # resolved feedback: it logs the resolution
    post_webhook(api, resolved)  # a redelivery
    reopened = {**resolved, "timestamp": resolved["timestamp"] + 600}
    post_webhook(api, reopened)  # resolved again after the customer came back
    resolutions = [e for e in logged_events(api, "chatwoot-14") if e["type"] == "resolution"]
    assert len(resolutions) == 2
