"""Chatwoot webhook payloads modelled on Chatwoot's documented samples (trimmed to what
matters, plus the fields tailorbot must not trip over)."""

from __future__ import annotations

from typing import Any


def _conversation(contact_id: int = 14, conversation_id: int = 10) -> dict[str, Any]:
    return {
        "additional_attributes": {"referer": "http://localhost:3000/widget_tests"},
        "can_reply": True,
        "channel": "Channel::WebWidget",
        "id": conversation_id,
        "inbox_id": 1,
        "contact_inbox": {
            "id": 12,
            "contact_id": contact_id,
            "inbox_id": 1,
            "source_id": "405f1d30-1af3-4fa0-8ffd-11ea3f86101e",
            "hmac_verified": False,
        },
        "messages": [],
        "meta": {
            "sender": {
                "additional_attributes": {},
                "custom_attributes": {},
                "email": None,
                "id": contact_id,
                "identifier": None,
                "name": "Ada",
                "phone_number": None,
                "thumbnail": "",
                "type": "contact",
            },
            "assignee": None,
        },
        "status": "pending",
        "unread_count": 1,
        "timestamp": 1627063369,
    }


def message_created(
    text: str,
    *,
    message_id: int = 118,
    contact_id: int = 14,
    conversation_id: int = 10,
    custom: dict[str, Any] | None = None,
) -> dict[str, Any]:
    conversation = _conversation(contact_id, conversation_id)
    conversation["meta"]["sender"]["custom_attributes"] = dict(custom or {})
    return {
        "id": message_id,
        "content": text,
        "created_at": "2021-07-23T18:02:48.000Z",
        "message_type": "incoming",
        "content_type": "text",
        "private": False,
        "content_attributes": {},
        "source_id": None,
        "sender": {"id": contact_id, "name": "Ada", "avatar": "", "type": "contact"},
        "inbox": {"id": 1, "name": "Acme Support"},
        "conversation": conversation,
        "account": {"id": 1, "name": "Acme Inc"},
        "event": "message_created",
    }


def csat_submitted(
    rating: int, *, contact_id: int = 14, conversation_id: int = 10
) -> dict[str, Any]:
    return {
        "id": 130,
        "content": "Please rate the conversation",
        "created_at": "2021-07-23T18:12:48.000Z",
        "message_type": "template",
        "content_type": "input_csat",
        "private": False,
        "content_attributes": {
            "submitted_values": {
                "csat_survey_response": {"rating": rating, "feedback_message": "thanks"}
            }
        },
        "sender": {"id": 1, "name": "Support Bot", "type": "agent_bot"},
        "inbox": {"id": 1, "name": "Acme Support"},
        "conversation": _conversation(contact_id, conversation_id),
        "account": {"id": 1, "name": "Acme Inc"},
        "event": "message_updated",
    }


def conversation_resolved(*, contact_id: int = 14, conversation_id: int = 10) -> dict[str, Any]:
    payload = _conversation(contact_id, conversation_id)
    payload["messages"] = [
        {
            "id": 120,
            "content": "Get notified by email",
            "account_id": 1,
            "inbox_id": 1,
            "conversation_id": conversation_id,
            "message_type": 3,
            "created_at": 1627063369,
            "private": False,
            "status": "sent",
            "content_type": "input_email",
            "content_attributes": {"submitted_email": "jane@acme.inc"},
        }
    ]
    payload["status"] = "resolved"
    payload["event"] = "conversation_resolved"
    return payload
