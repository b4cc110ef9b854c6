"""Rasa's NLG-server protocol: read the request, write the response.

When ``endpoints.yml`` names an ``nlg`` endpoint, Rasa asks it for the text of every
response it is about to send (``POST`` with ``response``, the utterance name, plus
``arguments``, ``id``, ``tracker`` and ``channel``; Rasa 2.0 called ``response``
``template``). The answer holds ``text`` and the rich-response keys ``buttons``, ``image``,
``elements``, ``attachments`` and ``custom``.

Rasa uses the answer as the whole message, so tailorbot must word every response. In this
order: the KB template whose id is the response name, else the template of ``<intent>``
for a response ``utter_<intent>`` (both personalized: the bandit's variant, recorded as a
decision), else the domain's own response (``rasa_domain``, rendered as Rasa would; see
:mod:`~tailorbot.integrations.rasa_domain`), else, with no domain configured, the template
of the customer's intent (as before the setting existed, with a warning); with a domain, a
response in neither is a 404.

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

import logging
import re
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tailorbot.errors import InvalidInput, NotFound, Problem
from tailorbot.features.state import BOT_TEXT_CHARS
from tailorbot.integrations.profiles import check_user_id
from tailorbot.integrations.rasa import RasaEventMapper, rasa_intent
from tailorbot.services.decisions.schemas import (
    PersonalizeContext,
    PersonalizeRequest,
    check_text_length,
    personalize_request_from,
)

if TYPE_CHECKING:
    from tailorbot.integrations.rasa_domain import RasaResponses

logger = logging.getLogger(__name__)
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
    rasa_channel: str | None = None  # the output channel's name as Rasa sent it
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
    if isinstance(sender, int) and not isinstance(sender, bool):
        sender = str(sender)  # as /v1/integrations/rasa/events reads a numeric sender id
    if sender is None:
        problems.append(Problem(None, "tracker.sender_id", "missing: the customer's id"))
    elif not isinstance(sender, str):
        problems.append(
            Problem(None, "tracker.sender_id", f"must be a string, got {type(sender).__name__}")
        )
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
        rasa_channel=channel_name if isinstance(channel_name, str) else None,
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
    """The body Rasa gets (None: utter nothing) and the decision it came from (None for the
    domain's own response: nothing was personalized, nothing recorded)."""

    body: dict[str, Any] | None
    decision_id: str | None = None
    template_id: str | None = None
    variant: str | None = None
    handoff: bool = False

    @classmethod
    def personalized(
        cls, text: str, decision_id: str, template_id: str, variant: str, handoff: bool = False
    ) -> NLGAnswer:
        """A decision's text, alone: the rest of the message is the response's own."""
        return cls(nlg_response(text), decision_id, template_id, variant, handoff)


class NLGResponder:
    """Answer Rasa's NLG requests with tailorbot decisions, or the domain's own responses.

    ``decider`` is the decision service; ``mapper`` derives the id of the customer's message
    event exactly as :class:`~tailorbot.integrations.rasa.RasaEventMapper` does for the
    broker's copy, so a message that reaches tailorbot both ways is counted once;
    ``responses`` are the bot's domain responses (None: no ``rasa_domain`` configured).
    """

    def __init__(
        self,
        decider: Any,
        mapper: RasaEventMapper | None = None,
        responses: RasaResponses | None = None,
    ) -> None:
        self.decider = decider
        self.mapper = mapper or RasaEventMapper()
        self.responses = responses

    def answer(self, request: NLGRequest) -> NLGAnswer:
        """What Rasa gets, and the decision behind it; :class:`NotFound` for a response
        that is neither the KB's nor the domain's (when a domain is configured)."""
        kb = self.decider.models.composer.kb
        name = request.response
        intent = name.removeprefix("utter_") if name.startswith("utter_") else None
        if kb.template(name) is not None:
            return self._personalized(request, name)
        if intent is not None and intent in kb.templated_intents():
            return self._personalized(request, kb.template_for(intent).id)
        if self.responses is not None:
            return NLGAnswer(self._domain_response(request, self.responses))
        _warn_unmapped(name)
        template_id = None
        if request.intent in kb.templated_intents():
            template_id = kb.template_for(request.intent).id
        return self._personalized(request, template_id)

    @staticmethod
    def _domain_response(request: NLGRequest, responses: RasaResponses) -> dict[str, Any] | None:
        if request.response not in responses:  # Rasa would have failed on it too
            raise NotFound(
                f"no response {request.response!r}: no KB template words it and the Rasa "
                "domain (rasa_domain) has none",
                problems=[Problem(None, "response", f"unknown response {request.response!r}")],
            )
        return responses.render(
            request.response,
            request.slots,
            request.arguments,
            request.rasa_channel,
            request.variation_id,
        )

    def _personalized(self, request: NLGRequest, template_id: str | None) -> NLGAnswer:
        # named as Rasa sends it, before the decision service names it its own way
        check_text_length(_SOURCES["message"], request.text, self.decider.settings.max_text_chars)
        if request.personalize is None:  # no customer text: a reply with nothing to read
            decided = self.decider.respond(
                request.user_id, request.session_id, template_id, request.channel
            )
            return NLGAnswer.personalized(
                decided["text"], decided["decision_id"], decided["template_id"], decided["variant"]
            )
        decision = self.decider.personalize(
            request.personalize,
            template_id=template_id,
            message_event_id=self._message_event_id(request),
        )
        return NLGAnswer.personalized(
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


_warned = threading.Event()


def _warn_unmapped(response: str) -> None:
    """Once per process: without a domain, a response no template words gets the intent's."""
    if not _warned.is_set():
        _warned.set()
        logger.warning(
            "Rasa response %r has no KB template and no Rasa domain is configured: it, and "
            "every such response, is answered with the template of the customer's intent; "
            "set TAILORBOT_RASA_DOMAIN to the bot's domain to answer with its own responses",
            response,
        )
