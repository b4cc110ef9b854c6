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
from tailorbot.features.state import BOT_TEXT_CHARS
from tailorbot.integrations.profiles import check_user_id
from tailorbot.integrations.rasa import RasaEventMapper, rasa_intent
from tailorbot.services.decisions.schemas import (
    PersonalizeContext,
    PersonalizeRequest,
    personalize_request_from,
)

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
    user_event: dict[str, Any] | None = None  # the tracker's last ``user`` event, as Rasa has it
    bot_text: str | None = None  # the bot's last utterance before that event (what it answers)
    # what the decision service is asked, validated while reading (None: no customer text)
    personalize: PersonalizeRequest | None = None

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
    if not isinstance(sender, str):
        problems.append(Problem(None, "tracker.sender_id", "missing: the customer's id"))
    else:  # the rules of events' ids, the same the decision service applies
        try:
            check_user_id(sender)
        except InvalidInput as exc:
            problems.extend(Problem(None, "tracker.sender_id", p.reason) for p in exc.problems)
    if problems:
        raise InvalidInput("the NLG request is not one Rasa sends", problems=problems)
    latest: dict[str, Any] = _object(tracker.get("latest_message"))
    text = latest.get("text") if isinstance(latest.get("text"), str) else None
    intent, confidence = rasa_intent(latest.get("intent"))
    channel_body = body.get("channel")
    channel_name = channel_body.get("name") if isinstance(channel_body, dict) else None
    channel = _CHANNEL.sub("-", str(channel_name or "").lower()).strip("-")[:32] or "rasa"
    text = text if text and text.strip() else None
    bot_text = _bot_text_before_user(tracker.get("events"))
    user_id = str(sender)
    personalize = None if text is None else _personalize_request(user_id, text, bot_text, channel)
    return NLGRequest(
        response=str(response),
        user_id=user_id,
        text=text,
        intent=intent,
        confidence=confidence,
        channel=channel,
        variation_id=str(body["id"]) if body.get("id") is not None else None,
        slots=_object(tracker.get("slots")),
        arguments=_object(body.get("arguments")),
        user_event=_last_user_event(tracker.get("events"), user_id),
        bot_text=bot_text,
        personalize=personalize,
    )


# Where in Rasa's request each field of the personalize request comes from.
_SOURCES = {
    "user_id": "tracker.sender_id",
    "session_id": "tracker.sender_id",
    "message": "tracker.latest_message.text",
    "last_bot_message": "tracker.events",
    "context": "channel.name",
}


def _personalize_request(
    user_id: str, text: str, bot_text: str | None, channel: str
) -> PersonalizeRequest:
    """Built here, not in the worker thread, so that what it refuses is a 422 naming Rasa's
    field (a lone surrogate in a text, say), not a server error."""
    return personalize_request_from(
        _SOURCES,
        "the NLG request is not one tailorbot can answer",
        user_id=user_id,
        session_id=user_id,  # Rasa's tracker is one conversation per sender
        message=text,
        last_bot_message=bot_text,
        context=PersonalizeContext(channel=channel),
    )


def _last_user_event(events: Any, sender: str) -> dict[str, Any] | None:
    if not isinstance(events, list):
        return None
    for event in reversed(events):
        if isinstance(event, dict) and event.get("event") == "user":
            return {**event, "sender_id": sender}
    return None


def _bot_text_before_user(events: Any) -> str | None:
    """The text of the last ``bot`` event before the tracker's last ``user`` event (None
    when the tracker has none: Rasa's events start at the session, so none was said)."""
    if not isinstance(events, list):
        return None
    seen_user = False
    for event in reversed(events):
        if not isinstance(event, dict):
            continue
        if event.get("event") == "user":
            seen_user = True
        elif seen_user and event.get("event") == "bot":
            text = event.get("text")  # None for an image or buttons alone: nothing asked
            # its end, where a question is: the whole could pass the request's length limit
            return text[-BOT_TEXT_CHARS:] if isinstance(text, str) else None
    return None


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


@dataclass(frozen=True)
class NLGAnswer:
    """The text Rasa gets, and the decision it came from (for logs and tests: Rasa shows
    whatever it finds in a response, so only ``text`` goes back)."""

    text: str
    decision_id: str
    template_id: str
    variant: str
    handoff: bool = False


class NLGResponder:
    """Answer Rasa's NLG requests with tailorbot decisions.

    ``decider`` is the decision service; ``mapper`` derives the id of the customer's message
    event exactly as :class:`~tailorbot.integrations.rasa.RasaEventMapper` does for the
    broker's copy, so a message that reaches tailorbot both ways is counted once.
    """

    def __init__(self, decider: Any, mapper: RasaEventMapper | None = None) -> None:
        self.decider = decider
        self.mapper = mapper or RasaEventMapper()

    def answer(self, request: NLGRequest) -> NLGAnswer:
        """The text for Rasa and the decision behind it."""
        kb = self.decider.models.composer.kb
        template_id = request.response if kb.template(request.response) is not None else None
        if template_id is None and request.intent in kb.templated_intents():
            template_id = kb.template_for(request.intent).id
        if request.personalize is None:  # no customer text: a reply with nothing to read
            decided = self.decider.respond(
                request.user_id, request.session_id, template_id, request.channel
            )
            return NLGAnswer(
                decided["text"], decided["decision_id"], decided["template_id"], decided["variant"]
            )
        decision = self.decider.personalize(
            request.personalize,
            template_id=template_id,
            message_event_id=self._message_event_id(request),
        )
        return NLGAnswer(
            decision.response.text,
            decision.decision_id,
            decision.response.template_id,
            decision.response.variant,
            handoff=decision.fallback.triggered,
        )

    def _message_event_id(self, request: NLGRequest) -> str | None:
        if request.user_event is None:
            return None
        try:
            events = self.mapper.map([request.user_event]).events
        except InvalidInput:
            return None
        return str(events[0]["event_id"]) if events else None
