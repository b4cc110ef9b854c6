from __future__ import annotations

import json
import time

import pytest

from tailorbot.integrations.chatwoot import (
    ConversationResolved,
    CsatSubmitted,
    Ignored,
    IncomingMessage,
    SignatureError,
    WithoutText,
    parse_webhook,
    sign,
    verify_signature,
)
from tailorbot.integrations.chatwoot_client import ChatwootClient
from tests.integrations.chatwoot_server import RecordingChatwoot
from tests.integrations.payloads import (
    conversation_resolved,
    csat_submitted,
    message_created,
)

SECRET = "whsec-test"


# --- signature ----------------------------------------------------------------------------
def test_a_good_signature_passes() -> None:
    body = json.dumps(message_created("hi")).encode()
    now = time.time()
    timestamp = str(int(now))
    verify_signature(SECRET, body, sign(SECRET, body, timestamp), timestamp, now=now)
    bare = sign(SECRET, body, timestamp).removeprefix("sha256=")
    verify_signature(SECRET, body, bare, timestamp, now=now)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"signature": None}, "missing X-Chatwoot-Signature"),
        ({"timestamp": None}, "missing X-Chatwoot-Timestamp"),
        ({"timestamp": "yesterday"}, "not epoch seconds"),
        ({"secret": "other"}, "wrong X-Chatwoot-Signature"),
        ({"body": b'{"event": "message_created", "content": "changed"}'}, "wrong"),
        ({"age_s": 301}, "stale X-Chatwoot-Timestamp"),
        ({"age_s": -301}, "stale X-Chatwoot-Timestamp"),
    ],
)
def test_bad_signatures_are_rejected(change: dict, message: str) -> None:
    body = b'{"event": "message_created"}'
    now = 1_767_261_600.0
    timestamp = str(int(now - change.get("age_s", 0)))
    signature = sign(change.get("secret", SECRET), body, timestamp)
    with pytest.raises(SignatureError, match=message) as caught:
        verify_signature(
            SECRET,
            change.get("body", body),
            change.get("signature", signature),
            change.get("timestamp", timestamp),
            now=now,
        )
    assert caught.value.http_status == 401


# --- payloads -----------------------------------------------------------------------------
def test_incoming_message() -> None:
    action = parse_webhook(message_created("Where is my card?", custom={"plan": "gold"}))
    assert isinstance(action, IncomingMessage)
    assert action.text == "Where is my card?"
    assert (action.conversation.account_id, action.conversation.conversation_id) == (1, 10)
    assert action.conversation.user_id == "chatwoot-14"
    assert action.conversation.session_id == "chatwoot-1-10"
    assert action.contact_name == "Ada"
    assert action.contact_attributes == {"plan": "gold"}


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"message_type": "outgoing"}, "not an incoming message"),
        ({"message_type": "template"}, "not an incoming message"),
        ({"private": True}, "private note"),
        ({"account": None}, "without account"),
    ],
)
def test_messages_the_bot_must_not_answer(change: dict, reason: str) -> None:
    payload = {**message_created("hi"), **change}
    action = parse_webhook(payload)
    assert isinstance(action, Ignored) and reason in action.reason


@pytest.mark.parametrize("content", [None, "", "  "])
def test_a_message_without_text_is_for_the_agents(content: object) -> None:
    action = parse_webhook({**message_created("hi"), "content": content})
    assert isinstance(action, WithoutText) and action.message_id == 118
    assert action.conversation.session_id == "chatwoot-1-10"


@pytest.mark.parametrize("status", ["open", "resolved", "snoozed"])
def test_a_conversation_the_bot_does_not_hold_is_not_answered(status: str) -> None:
    payload = message_created("my card has not arrived")
    payload["conversation"]["status"] = status
    action = parse_webhook(payload)
    assert isinstance(action, Ignored) and repr(status) in action.reason
    del payload["conversation"]["status"]  # older payloads do not say: the bot answers
    assert isinstance(parse_webhook(payload), IncomingMessage)


def test_csat_answer_and_resolution() -> None:
    action = parse_webhook(csat_submitted(4))
    assert isinstance(action, CsatSubmitted)
    assert action.rating == 4 and action.conversation.session_id == "chatwoot-1-10"
    assert isinstance(parse_webhook(csat_submitted(9)), Ignored)
    no_rating = csat_submitted(4)
    no_rating["content_attributes"] = {}
    assert isinstance(parse_webhook(no_rating), Ignored)

    resolved = parse_webhook(conversation_resolved())
    assert isinstance(resolved, ConversationResolved)
    assert resolved.conversation.user_id == "chatwoot-14"
    assert resolved.conversation.session_id == "chatwoot-1-10"
    assert resolved.at == 1627063369  # the conversation's last activity: one per resolution


@pytest.mark.parametrize("account_id", ["²", "١", "1" * 5000, "1" * 20, -1, 2**63, True, "12a"])
def test_an_unreadable_account_id_is_ignored(account_id: object) -> None:
    payload = {**message_created("hi"), "account": {"id": account_id}}
    action = parse_webhook(payload)
    assert isinstance(action, Ignored) and "without account" in action.reason


@pytest.mark.parametrize("contact_id", ["²", "1" * 5000, "1" * 200])
def test_an_unreadable_contact_id_counts_as_missing(contact_id: str) -> None:
    payload = message_created("hi")
    payload["sender"] = {"id": contact_id, "type": "contact"}
    action = parse_webhook(payload)  # the conversation's contact, as without a sender id
    assert isinstance(action, IncomingMessage)
    assert action.conversation.user_id == "chatwoot-14"
    del payload["conversation"]["contact_inbox"], payload["conversation"]["meta"]
    action = parse_webhook(payload)  # no contact at all: the conversation is the user
    assert isinstance(action, IncomingMessage)
    assert action.conversation.user_id == action.conversation.session_id == "chatwoot-1-10"
    assert len(action.conversation.user_id) <= 128


def test_other_events_and_junk_are_ignored() -> None:
    assert isinstance(parse_webhook({"event": "webwidget_triggered"}), Ignored)
    assert isinstance(parse_webhook([1, 2]), Ignored)
    assert isinstance(parse_webhook({"event": "conversation_resolved"}), Ignored)


# --- outbound client ----------------------------------------------------------------------
def test_client_posts_in_order_with_the_token_and_retries() -> None:
    with RecordingChatwoot() as chatwoot:
        chatwoot.fail_next = 2  # the first call is answered 503 twice, then accepted
        client = ChatwootClient(chatwoot.url, "bot-token", backoff_s=0.01)
        client.start()
        try:
            assert client.send_message(1, 10, "Hi Ada")
            assert client.toggle_status(1, 10)
            assert client.join(10)
        finally:
            client.close()
        assert [(c.path, c.token, c.body) for c in chatwoot.calls] == [
            (
                "/api/v1/accounts/1/conversations/10/messages",
                "bot-token",
                {"content": "Hi Ada", "message_type": "outgoing", "private": False},
            ),
            ("/api/v1/accounts/1/conversations/10/toggle_status", "bot-token", {"status": "open"}),
        ]
        assert (client.sent, client.failed, client.dropped) == (2, 0, 0)


def test_client_gives_up_after_max_attempts_and_drops_when_full() -> None:
    with RecordingChatwoot() as chatwoot:
        chatwoot.fail_next = 100
        client = ChatwootClient(
            chatwoot.url, "t", max_attempts=3, backoff_s=0.01, max_pending=1, autostart=False
        )
        assert client.send_message(1, 10, "one")
        assert not client.send_message(1, 10, "two")  # queue full, thread not started
        client.start()
        assert client.join(10)
        client.close()
        assert (client.sent, client.failed, client.dropped) == (0, 1, 1)
        assert chatwoot.fail_next == 97  # three tries


def test_a_message_whose_fate_is_unknown_is_not_sent_again() -> None:
    with RecordingChatwoot() as chatwoot:
        chatwoot.fail_next, chatwoot.fail_status = 100, 500  # it may have been written
        client = ChatwootClient(chatwoot.url, "t", max_attempts=3, backoff_s=0.01)
        client.send_message(1, 10, "Hi Ada")
        assert client.join(10)
        assert chatwoot.fail_next == 99  # one try: a second could post it twice
        client.toggle_status(1, 10)  # idempotent: retried
        assert client.join(10)
        assert chatwoot.fail_next == 96
        chatwoot.fail_next = 0
        chatwoot.stall_s = {"/conversations/11/messages": 2.0}  # answered after the timeout
        slow = ChatwootClient(chatwoot.url, "t", max_attempts=3, backoff_s=0.01, timeout_s=0.5)
        slow.send_message(1, 11, "Hi Bob")
        assert slow.join(10)
        client.close()
        slow.close()
        assert [c.path for c in chatwoot.calls].count(
            "/api/v1/accounts/1/conversations/11/messages"
        ) == 1
        assert (client.failed, slow.failed, slow.sent) == (2, 1, 0)


def test_a_slow_conversation_does_not_hold_up_the_others() -> None:
    with RecordingChatwoot() as chatwoot:
        chatwoot.stall_s = {"/conversations/10/messages": 1.5}
        client = ChatwootClient(chatwoot.url, "t")
        client.send_message(1, 10, "to the slow one")
        client.send_message(1, 11, "to another")
        client.toggle_status(1, 10)
        assert client.join(10)
        client.close()
        conversation = "/api/v1/accounts/1/conversations/{}"
        assert chatwoot.finished == [
            conversation.format(11) + "/messages",
            conversation.format(10) + "/messages",
            conversation.format(10) + "/toggle_status",  # a conversation's calls in order
        ]


def test_client_survives_an_unreachable_chatwoot() -> None:
    client = ChatwootClient("http://127.0.0.1:9", "t", max_attempts=2, backoff_s=0.01)
    client.start()
    client.send_message(1, 10, "hello")
    assert client.join(10)
    client.close()
    assert client.failed == 1
