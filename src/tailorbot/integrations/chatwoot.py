"""Chatwoot Agent Bot webhooks: check the signature, read the payload as one action.

Chatwoot posts every event of the inboxes a bot is connected to. With a webhook secret it
signs each request: ``X-Chatwoot-Timestamp`` (epoch seconds) and ``X-Chatwoot-Signature``
(``sha256=`` and the hex HMAC-SHA256 of ``{timestamp}.{raw body}`` keyed by the secret).
:func:`verify_signature` rejects a missing, wrong or stale signature (401).

:func:`parse_webhook` reads the payloads that matter to tailorbot:

* ``message_created`` with ``message_type`` ``incoming`` (not private) in a conversation the
  bot holds (status ``pending``, or none given): the customer wrote; tailorbot personalizes
  and replies (:class:`IncomingMessage`), or, for a message without text (an attachment, a
  location), hands the conversation to the agents (:class:`WithoutText`). Once the
  conversation is ``open`` (handed over, or taken by an agent) its messages are the agents'
  to answer, as Chatwoot's own bot integrations do;
* ``message_updated`` of an ``input_csat`` message whose
  ``content_attributes.submitted_values.csat_survey_response.rating`` is set: the CSAT
  answer, feedback on the conversation's last decision (:class:`CsatSubmitted`);
* ``conversation_resolved``: the conversation's outcome (:class:`ConversationResolved`,
  with the conversation's ``timestamp``, its last activity, which tells a redelivery from a
  second resolution after the conversation was reopened).

Everything else (the bot's own outgoing messages, private notes, other events) is
:class:`Ignored`, so the bot never answers itself. Conversation ids in webhooks are the
``display_id`` that the API's ``/conversations/{conversation_id}`` paths take.

>>> import hashlib, hmac
>>> body = b'{"event": "message_created"}'
>>> mac = hmac.new(b"s3cret", b"1767261600." + body, hashlib.sha256).hexdigest()
>>> verify_signature("s3cret", body, "sha256=" + mac, "1767261600", now=1767261630.0)
>>> action = parse_webhook({"event": "message_created", "id": 7, "content": "Hi",
...     "message_type": "incoming", "private": False, "account": {"id": 1},
...     "sender": {"id": 14, "name": "Ada", "type": "contact"},
...     "conversation": {"id": 10, "inbox_id": 2}})
>>> action.conversation.user_id, action.conversation.session_id, action.text
('chatwoot-14', 'chatwoot-1-10', 'Hi')
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from tailorbot.errors import EngineError
from tailorbot.integrations.times import parse_time

SIGNATURE_HEADER = "X-Chatwoot-Signature"
TIMESTAMP_HEADER = "X-Chatwoot-Timestamp"
MAX_SKEW_S = 300.0  # how old (or far ahead) a signed timestamp may be
MAX_ATTRIBUTES = 32


class SignatureError(EngineError):
    """The webhook's signature is missing, wrong or stale."""

    http_status = 401
    code = "unauthorized"


def sign(secret: str, body: bytes, timestamp: str) -> str:
    """The ``X-Chatwoot-Signature`` value Chatwoot sends for ``body`` at ``timestamp``."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify_signature(
    secret: str,
    body: bytes,
    signature: str | None,
    timestamp: str | None,
    *,
    now: float | None = None,
    max_skew_s: float = MAX_SKEW_S,
) -> None:
    """Raise :class:`SignatureError` unless ``signature`` signs ``body`` at a fresh
    ``timestamp``."""
    if not signature or not timestamp:
        missing = SIGNATURE_HEADER if not signature else TIMESTAMP_HEADER
        raise SignatureError(f"missing {missing} header: this webhook must be signed")
    try:
        sent_at = float(timestamp)
    except ValueError:
        raise SignatureError(f"{TIMESTAMP_HEADER} is not epoch seconds") from None
    skew = abs((time.time() if now is None else now) - sent_at)
    if skew > max_skew_s:
        raise SignatureError(
            f"stale {TIMESTAMP_HEADER}: {skew:.0f}s from now, at most {max_skew_s:.0f}s accepted"
        )
    expected = sign(secret, body, timestamp.strip())
    given = signature.strip()
    if not given.startswith("sha256="):
        given = "sha256=" + given  # the bare hex digest is accepted too
    if not hmac.compare_digest(expected, given):
        raise SignatureError(f"wrong {SIGNATURE_HEADER}: the body or the secret does not match")


@dataclass(frozen=True)
class Conversation:
    account_id: int
    conversation_id: int  # the display id the API paths take
    contact_id: int | None

    @property
    def user_id(self) -> str:
        # Contact ids are unique across a Chatwoot installation.
        return f"chatwoot-{self.contact_id}" if self.contact_id is not None else self.session_id

    @property
    def session_id(self) -> str:
        return f"chatwoot-{self.account_id}-{self.conversation_id}"


@dataclass(frozen=True)
class IncomingMessage:
    conversation: Conversation
    message_id: int | None
    text: str
    contact_name: str | None = None
    contact_attributes: dict[str, Any] = field(default_factory=dict)
    created_at: float | None = None  # when Chatwoot created the message (epoch s), if given


@dataclass(frozen=True)
class WithoutText:
    """An incoming message tailorbot cannot read (no text): the agents take over."""

    conversation: Conversation
    message_id: int | None
    created_at: float | None = None


@dataclass(frozen=True)
class CsatSubmitted:
    conversation: Conversation
    rating: int
    message_id: int | None = None


@dataclass(frozen=True)
class ConversationResolved:
    conversation: Conversation
    at: int | None = None  # the conversation's last activity (epoch s), when given


@dataclass(frozen=True)
class Ignored:
    reason: str


Action = IncomingMessage | WithoutText | CsatSubmitted | ConversationResolved | Ignored


def parse_webhook(payload: Any) -> Action:
    """The one thing a webhook payload asks of tailorbot (:class:`Ignored` for the rest)."""
    if not isinstance(payload, dict):
        return Ignored("the payload is not a JSON object")
    event = payload.get("event")
    if event == "message_created":
        return _message_created(payload)
    if event == "message_updated":
        return _message_updated(payload)
    if event == "conversation_resolved":
        conversation = _conversation(payload, payload, _conversation_account(payload))
        if conversation is None:
            return Ignored("conversation_resolved without account or conversation id")
        return ConversationResolved(conversation, _int(payload.get("timestamp")))
    return Ignored(f"event {event!r} is not handled")


def _message_created(payload: Mapping[str, Any]) -> Action:
    if payload.get("message_type") not in ("incoming", 0):
        return Ignored("not an incoming message (the bot's or an agent's own)")
    if payload.get("private"):
        return Ignored("a private note")
    conversation = _conversation(payload, payload.get("conversation"), _account(payload))
    if conversation is None:
        return Ignored("message_created without account or conversation id")
    status = _status(payload)
    if status is not None and status != "pending":
        return Ignored(f"the conversation is {status!r}: the agents answer it, not the bot")
    text = payload.get("content")
    created_at = _epoch(payload.get("created_at"))
    if not isinstance(text, str) or not text.strip():
        return WithoutText(conversation, _int(payload.get("id")), created_at)
    contact = _contact(payload)
    name = contact.get("name")
    return IncomingMessage(
        conversation,
        _int(payload.get("id")),
        text.strip(),
        contact_name=name if isinstance(name, str) and name.strip() else None,
        contact_attributes=_scalars(contact.get("custom_attributes")),
        created_at=created_at,
    )


def _message_updated(payload: Mapping[str, Any]) -> Action:
    attributes = payload.get("content_attributes")
    submitted = attributes.get("submitted_values") if isinstance(attributes, dict) else None
    survey = submitted.get("csat_survey_response") if isinstance(submitted, dict) else None
    rating = _int(survey.get("rating")) if isinstance(survey, dict) else None
    if rating is None:
        return Ignored("message_updated without a CSAT rating")
    if not 1 <= rating <= 5:
        return Ignored(f"CSAT rating {rating} is outside 1-5")
    conversation = _conversation(payload, payload.get("conversation"), _account(payload))
    if conversation is None:
        return Ignored("CSAT answer without account or conversation id")
    return CsatSubmitted(conversation, rating, _int(payload.get("id")))


def _conversation(
    payload: Mapping[str, Any], conversation: Any, account_id: int | None
) -> Conversation | None:
    if not isinstance(conversation, dict):
        return None
    conversation_id = _int(conversation.get("id"))
    if account_id is None or conversation_id is None:
        return None
    contact_inbox = conversation.get("contact_inbox")
    contact_id = _int(_contact(payload).get("id"))
    if contact_id is None and isinstance(contact_inbox, dict):
        contact_id = _int(contact_inbox.get("contact_id"))
    return Conversation(account_id, conversation_id, contact_id)


def _status(payload: Mapping[str, Any]) -> str | None:
    """The conversation's status (``pending`` while a bot holds it, ``open`` with the agents,
    ``resolved``, ``snoozed``), None when the payload does not say."""
    conversation = payload.get("conversation")
    status = conversation.get("status") if isinstance(conversation, dict) else None
    return status if isinstance(status, str) else None


def _account(payload: Mapping[str, Any]) -> int | None:
    account = payload.get("account")
    return _int(account.get("id")) if isinstance(account, dict) else None


def _conversation_account(payload: Mapping[str, Any]) -> int | None:
    """Conversation events carry the account on their messages, not at the top."""
    found = _account(payload)
    messages = payload.get("messages")
    if found is None and isinstance(messages, list):
        found = next((_int(m.get("account_id")) for m in messages if isinstance(m, dict)), None)
    return found


def _contact(payload: Mapping[str, Any]) -> dict[str, Any]:
    """The contact: the message's sender, else the conversation's ``meta.sender``."""
    sender = payload.get("sender")
    if isinstance(sender, dict) and sender.get("type") in (None, "contact"):
        meta_sender = _meta_sender(payload)
        return {**meta_sender, **sender} if meta_sender.get("id") == sender.get("id") else sender
    return _meta_sender(payload)


def _meta_sender(payload: Mapping[str, Any]) -> dict[str, Any]:
    conversation = payload.get("conversation")
    holder = conversation if isinstance(conversation, dict) else payload
    meta = holder.get("meta")
    sender = meta.get("sender") if isinstance(meta, dict) else None
    return sender if isinstance(sender, dict) else {}


def _scalars(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        return {}
    found: dict[str, Any] = {}
    for key, item in value.items():
        if len(found) >= MAX_ATTRIBUTES:
            break
        if isinstance(item, str | int | float | bool) and 0 < len(str(key)) <= 64:
            found[str(key)] = item
    return found


def _epoch(value: Any) -> float | None:
    """A time Chatwoot sent, in epoch seconds: message webhooks write ISO 8601 text
    (``2021-07-23T18:02:48.000Z``), conversation payloads epoch seconds; else None.

    >>> _epoch("2021-07-23T18:02:48.000Z"), _epoch(1627063368), _epoch("yesterday")
    (1627063368.0, 1627063368.0, None)
    """
    try:
        return parse_time(value).timestamp()
    except ValueError:
        return None


_MAX_ID = 2**63 - 1  # Chatwoot's ids are PostgreSQL bigints


def _int(value: Any) -> int | None:
    """An id (or a rating) Chatwoot could have sent, else None: read like a missing one."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        text = value.strip()
        # isdigit() alone is true for "²" (int() refuses it) and for other scripts' digits
        if not (text.isascii() and text.isdigit() and len(text) <= 19):
            return None
        value = int(text)
    if isinstance(value, int) and 0 <= value <= _MAX_ID:
        return value
    return None
