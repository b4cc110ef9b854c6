"""Chatwoot after an erasure: a webhook about a message made before the customer was erased
(Chatwoot re-delivering one that timed out) is not handled again, although the erasure
removed the conversation's pointer that recognises re-deliveries."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from fastapi.testclient import TestClient

from tests.integrations import test_chatwoot_flow as flow
from tests.integrations.chatwoot_server import RecordingChatwoot
from tests.integrations.payloads import conversation_resolved, message_created
from tests.integrations.test_api_rasa import logged_events
from tests.integrations.test_chatwoot_flow import MESSAGES, TOGGLE, calls_to, post_webhook, sent

# the flow's fixtures: a signed webhook server and the Chatwoot API it calls
api, chatwoot = flow.api, flow.chatwoot
USER = "chatwoot-31"


def erase(client: TestClient) -> None:
    answer = client.delete(f"/v1/users/{USER}", headers={"X-API-Key": "tailorbot-key"})
    assert answer.status_code == 204, answer.text


def calls(client: TestClient, chatwoot: RecordingChatwoot, path: str) -> int:
    sent(client)
    return len([c for c in chatwoot.calls if c.path == path])


def test_a_message_redelivered_after_the_erasure_is_not_answered_again(
    api: TestClient, chatwoot: RecordingChatwoot
) -> None:
    profiles = api.app.state.runtime.stores.profiles
    payload = message_created("my card has not arrived", contact_id=31, custom={"plan": "metal"})
    assert post_webhook(api, payload).json()["action"] == "replied"
    calls_to(chatwoot, MESSAGES.format(10), 1)
    assert profiles.get(USER) is not None
    erase(api)
    again = post_webhook(api, payload)
    assert again.status_code == 200, again.text
    assert again.json()["action"] == "ignored" and "erased" in again.json()["reason"]
    assert calls(api, chatwoot, MESSAGES.format(10)) == 1
    assert profiles.get(USER) is None
    assert logged_events(api, USER) == []


def test_a_message_made_after_the_erasure_is_answered(
    api: TestClient, chatwoot: RecordingChatwoot
) -> None:
    erase(api)
    payload = message_created("my card has not arrived", contact_id=31, message_id=400)
    payload["created_at"] = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    time.sleep(0.01)
    answer = post_webhook(api, payload)
    assert answer.json()["action"] == "replied", answer.text
    calls_to(chatwoot, MESSAGES.format(10), 1)
    assert api.app.state.runtime.stores.profiles.get(USER)["name"] == "Ada"


def test_a_hand_over_redelivered_after_the_erasure_is_not_done_again(
    api: TestClient, chatwoot: RecordingChatwoot
) -> None:
    payload = message_created("", contact_id=31, conversation_id=12, message_id=300)
    payload["content"] = None
    assert post_webhook(api, payload).json()["action"] == "handoff"
    calls_to(chatwoot, TOGGLE.format(12), 1)
    erase(api)
    assert post_webhook(api, payload).json()["action"] == "ignored"
    assert calls(api, chatwoot, TOGGLE.format(12)) == 1
    assert logged_events(api, USER) == []


def test_a_resolution_redelivered_after_the_erasure_is_not_logged_again(
    api: TestClient,
) -> None:
    payload = conversation_resolved(contact_id=31)  # its last activity: in 2021
    assert post_webhook(api, payload).json()["action"] == "resolved"
    erase(api)
    answer = post_webhook(api, payload)
    assert answer.json()["action"] == "ignored", answer.text
    assert logged_events(api, USER) == []
