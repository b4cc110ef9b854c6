"""Rasa's NLG-server protocol: read the request, write the response.

When ``endpoints.yml`` names an ``nlg`` endpoint, Rasa asks it for the text of every
response it is about to send (``POST`` with ``response``, the utterance name, plus
``arguments``, ``id``, ``tracker`` and ``channel``; Rasa 2.0 called ``response``
``template``). The answer holds ``text`` and the rich-response keys ``buttons``, ``image``,
``elements``, ``attachments`` and ``custom``.

tailorbot answers with the bandit-chosen variant of the KB template for that utterance
(a template whose id is the utterance name) or, failing that, for the customer's intent,
so Rasa's replies are personalized without custom code.

>>> request = parse_nlg_request({
...     "response": "utter_card_arrival", "arguments": {}, "id": None,
...     "tracker": {"sender_id": "c-42", "slots": {"plan": "gold"},
...                 "latest_message": {"text": "where is my card?",
...                                    "intent": {"name": "card_arrival", "confidence": 0.9}}},
...     "channel": {"name": "rest"}})
>>> request.response, request.user_id, request.intent, request.channel
('utter_card_arrival', 'c-42', 'card_arrival', 'rest')
>>> nlg_response("Hi Ada")["text"]
'Hi Ada'
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from tailorbot.errors import InvalidInput, Problem

_IDENTIFIER = re.compile(r"^[A-Za-z0-9_.:@\-]{1,128}$")
_CHANNEL = re.compile(r"[^a-z0-9_\-]+")


@dataclass(frozen=True)
class NLGRequest:
    """What tailorbot needs from Rasa's NLG request."""

    response: str
    user_id: str
    text: str | None = None  # the customer's latest message
    intent: str | None = None  # Rasa's reading of it
    confidence: float | None = None
    channel: str = "rasa"
    variation_id: str | None = None
    slots: dict[str, Any] = field(default_factory=dict)
    arguments: dict[str, Any] = field(default_factory=dict)

    @property
    def session_id(self) -> str:
        # Rasa's tracker is one conversation per sender; see tailorbot.integrations.rasa.
        return self.user_id


def parse_nlg_request(body: Any) -> NLGRequest:
    """Read Rasa's NLG request; raises :class:`InvalidInput` naming each bad field."""
    if not isinstance(body, dict):
        raise InvalidInput(
            "the NLG request must be a JSON object",
            problems=[Problem(None, "(body)", f"got a JSON {type(body).__name__}")],
        )
    problems: list[Problem] = []
    response = body.get("response", body.get("template"))
    if not isinstance(response, str) or not response:
        problems.append(Problem(None, "response", "missing: the name of the utterance"))
    tracker = body.get("tracker")
    if not isinstance(tracker, dict):
        problems.append(Problem(None, "tracker", "missing: Rasa's conversation tracker"))
        tracker = {}
    sender = tracker.get("sender_id")
    if not isinstance(sender, str) or not _IDENTIFIER.match(sender):
        problems.append(
            Problem(None, "tracker.sender_id", "must be 1-128 letters, digits or _ . : @ -")
        )
    if problems:
        raise InvalidInput("the NLG request is not one Rasa sends", problems=problems)
    latest: dict[str, Any] = _object(tracker.get("latest_message"))
    text = latest.get("text") if isinstance(latest.get("text"), str) else None
    intent, confidence = _intent(latest.get("intent"))
    channel_body = body.get("channel")
    channel_name = channel_body.get("name") if isinstance(channel_body, dict) else None
    channel = _CHANNEL.sub("-", str(channel_name or "").lower()).strip("-")[:32] or "rasa"
    return NLGRequest(
        response=str(response),
        user_id=str(sender),
        text=text if text and text.strip() else None,
        intent=intent,
        confidence=confidence,
        channel=channel,
        variation_id=str(body["id"]) if body.get("id") is not None else None,
        slots=_object(tracker.get("slots")),
        arguments=_object(body.get("arguments")),
    )


def _object(value: Any) -> dict[str, Any]:
    return dict(value) if isinstance(value, dict) else {}


def nlg_response(text: str, custom: dict[str, Any] | None = None) -> dict[str, Any]:
    """The response body Rasa expects (text plus empty rich-response keys)."""
    return {
        "text": text,
        "buttons": [],
        "image": None,
        "elements": [],
        "attachments": [],
        "custom": custom or {},
    }


def _intent(intent: Any) -> tuple[str | None, float | None]:
    if not isinstance(intent, dict):
        return None, None
    name = intent.get("name")
    if not isinstance(name, str) or not _IDENTIFIER.match(name):
        return None, None
    confidence = intent.get("confidence")
    if isinstance(confidence, int | float) and 0.0 <= confidence <= 1.0:
        return name, float(confidence)
    return name, None
