"""tailorbot as a Chatwoot Agent Bot: what each webhook action does.

:class:`ChatwootBot` runs the actions that :func:`~tailorbot.integrations.chatwoot.parse_webhook`
reads, over the decision service, the profile store and the event sink:

* an incoming message: the contact's name and custom attributes go into the profile, the
  message is personalized (user ``chatwoot-<contact>``, session
  ``chatwoot-<account>-<conversation>``), the chosen variant is queued as the bot's reply
  and, when the fallback fired, the conversation is handed to the agents
  (``toggle_status`` ``open``, and a ``handoff`` event);
* an incoming message without text (an attachment, a location): handed to the agents;
* a CSAT answer: ``rating`` feedback on the conversation's last decision (the bandit's
  reward), unless the bot handed the conversation over (the rating is then the agents');
* a resolved conversation: ``resolved`` feedback on the last decision (which logs the
  ``resolution`` event, also after a CSAT was the decision's outcome), or, when there is none
  to give it to or the agents resolved it, a ``resolution`` event of the bot's own.

The conversation's last decision is remembered in the decision store under
``chatwoot:last:<session>`` (shared by every server process, erased with the user), with the
id of the message it answered, whether the conversation was handed over and the last
resolution's time. Chatwoot re-delivers a webhook when its first delivery timed out; a
message whose id is not above the remembered one, or a resolution at the remembered time,
is answered ``duplicate`` and not handled again (two deliveries handled
at the very same moment by two processes can still both be answered: the check and the write
are not one atomic step). The erasure of the customer takes that pointer too: a message (or
a resolution's last activity) dated before the erasure is then answered ``ignored``, so a
re-delivery neither answers the customer again nor writes their profile back.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

from tailorbot.config import Settings
from tailorbot.errors import InvalidInput, NotFound, backend_errors
from tailorbot.events.codec import now_iso
from tailorbot.integrations.chatwoot import (
    Action,
    Conversation,
    ConversationResolved,
    CsatSubmitted,
    IncomingMessage,
    WithoutText,
)
from tailorbot.integrations.chatwoot_client import ChatwootClient
from tailorbot.integrations.profiles import ProfileUpdater
from tailorbot.services.decisions.schemas import (
    FeedbackRequest,
    FeedbackResponse,
    PersonalizeContext,
    PersonalizeRequest,
    PersonalizeResponse,
    check_text_length,
    personalize_request_from,
)
from tailorbot.services.ports import EventSink
from tailorbot.store.base import DecisionStore
from tailorbot.telemetry.logs import user_ref

logger = logging.getLogger(__name__)

CHANNEL = "chatwoot"
POINTER_PREFIX = "chatwoot:last:"
ERASED = {"action": "ignored", "reason": "made before the customer's data was erased"}
# Where in the webhook payload each field of the personalize request comes from.
_SOURCES = {"user_id": "sender.id", "session_id": "conversation.id", "message": "content"}


class Decider(Protocol):
    settings: Settings  # its max_text_chars: checked before the profile is written

    def personalize(self, request: PersonalizeRequest) -> PersonalizeResponse: ...

    def feedback(self, request: FeedbackRequest) -> FeedbackResponse: ...


class ChatwootBot:
    """Run webhook actions; outbound calls go through ``client`` (off the request path)."""

    def __init__(
        self,
        decisions: Decider,
        client: ChatwootClient,
        events: EventSink,
        profiles: ProfileUpdater,
        decision_store: DecisionStore,
    ) -> None:
        self.decisions = decisions
        self.client = client
        self.events = events
        self.profiles = profiles
        self.decision_store = decision_store

    def handle(self, action: Action) -> dict[str, Any]:
        """Do what ``action`` asks; the summary is the webhook's answer."""
        if isinstance(action, IncomingMessage):
            return self._reply(action)
        if isinstance(action, WithoutText):
            return self._hand_over(action)
        if isinstance(action, CsatSubmitted):
            return self._csat(action)
        if isinstance(action, ConversationResolved):
            return self._resolved(action)
        return {"action": "ignored", "reason": action.reason}

    def _reply(self, message: IncomingMessage) -> dict[str, Any]:
        conversation = message.conversation
        # What personalize would refuse is refused before the profile is written.
        request = self._request(message)
        pointer = self._pointer(conversation)
        if _answered_already(pointer, message.message_id):
            return {"action": "duplicate", "decision_id": pointer.get("decision_id")}
        if self._erased_since(conversation, message.created_at):
            return dict(ERASED)
        self._update_profile(conversation.user_id, message)
        decision = self.decisions.personalize(request)
        handoff = decision.fallback.triggered
        self._remember(conversation, decision.decision_id, message.message_id, handoff)
        queued = self.client.send_message(
            conversation.account_id, conversation.conversation_id, decision.response.text
        )
        if handoff:
            reason = f"fallback: {decision.fallback.reason}"
            queued = self._open(conversation, f"{decision.decision_id}-handoff", reason) and queued
        return {
            "action": "handoff" if handoff else "replied",
            "decision_id": decision.decision_id,
            "queued": queued,
        }

    def _hand_over(self, message: WithoutText) -> dict[str, Any]:
        """A message tailorbot cannot read: the agents take the conversation."""
        conversation = message.conversation
        pointer = self._pointer(conversation)
        if _answered_already(pointer, message.message_id):
            return {"action": "duplicate", "decision_id": pointer.get("decision_id")}
        if self._erased_since(conversation, message.created_at):
            return dict(ERASED)
        self._remember(conversation, _decision_of(pointer), message.message_id, handed_off=True)
        suffix = message.message_id if message.message_id is not None else now_iso()
        queued = self._open(
            conversation, f"{conversation.session_id}-{suffix}-handoff", "a message without text"
        )
        return {"action": "handoff", "decision_id": None, "queued": queued}

    def _open(self, conversation: Conversation, event_id: str, reason: str) -> bool:
        """Hand the conversation to the agents: a ``handoff`` event and ``toggle_status``."""
        self.events.ingest([_handoff_event(conversation, event_id, reason)])
        return self.client.toggle_status(
            conversation.account_id, conversation.conversation_id, "open"
        )

    def _request(self, message: IncomingMessage) -> PersonalizeRequest:
        check_text_length("content", message.text, self.decisions.settings.max_text_chars)
        conversation = message.conversation
        return personalize_request_from(
            _SOURCES,
            "the message cannot be personalized",
            user_id=conversation.user_id,
            session_id=conversation.session_id,
            message=message.text,
            context=PersonalizeContext(channel=CHANNEL),
        )

    def _csat(self, csat: CsatSubmitted) -> dict[str, Any]:
        pointer = self._pointer(csat.conversation)
        decision_id = _decision_of(pointer)
        if decision_id is None:
            return {"action": "ignored", "reason": "no decision in this conversation"}
        if pointer.get("handed_off"):
            return {"action": "ignored", "reason": "the agents had the conversation"}
        result = self._feedback(FeedbackRequest(decision_id=decision_id, rating=csat.rating))
        applied = result is not None and result.applied
        return {"action": "feedback", "decision_id": decision_id, "applied": applied}

    def _resolved(self, resolved: ConversationResolved) -> dict[str, Any]:
        conversation = resolved.conversation
        pointer = self._pointer(conversation)
        decision_id = _decision_of(pointer)
        if resolved.at is not None and pointer.get("resolved_at") == resolved.at:
            return {"action": "duplicate", "decision_id": decision_id}
        if self._erased_since(conversation, resolved.at):  # no activity since the erasure
            return dict(ERASED)
        result = None
        credit = decision_id is not None and not pointer.get("handed_off")
        if credit and pointer.get("resolution_of") != decision_id:
            # The feedback logs the decision's resolution event itself: as its outcome, or
            # after the outcome it had (a CSAT). A resolution after a reopening is the bot's.
            result = self._feedback(FeedbackRequest(decision_id=decision_id, resolved=True))
        if result is None:  # no decision of the bot's to credit, the agents had it, or again
            self.events.ingest([_resolution_event(conversation, resolved.at)])
        remembered: dict[str, Any] = {}
        if result is not None:
            remembered["resolution_of"] = decision_id
        if resolved.at is not None:
            remembered["resolved_at"] = resolved.at
        if remembered:
            self._save(conversation, {**pointer, **remembered})
        applied = result is not None and result.applied
        return {"action": "resolved", "decision_id": decision_id, "applied": applied}

    def _feedback(self, request: FeedbackRequest) -> FeedbackResponse | None:
        """The feedback's answer; None when its decision is gone (expired, or the user
        was erased meanwhile)."""
        try:
            return self.decisions.feedback(request)
        except NotFound:
            return None

    def _erased_since(self, conversation: Conversation, made_at: float | None) -> bool:
        """Whether the customer was erased after ``made_at`` (when what the webhook reports
        happened): the erasure took the pointer that recognises a re-delivery, so without
        this one would be answered again and the profile written back."""
        return made_at is not None and self.profiles.erased_after(conversation.user_id, made_at)

    # --- the conversation's last decision ---------------------------------------------
    def _remember(
        self,
        conversation: Conversation,
        decision_id: str | None,
        message_id: int | None,
        handed_off: bool,
    ) -> None:
        fields = {"decision_id": decision_id, "message_id": message_id, "handed_off": handed_off}
        self._save(conversation, fields)

    def _save(self, conversation: Conversation, fields: dict[str, Any]) -> None:
        with backend_errors():
            self.decision_store.put(
                POINTER_PREFIX + conversation.session_id,
                conversation.user_id,
                {**fields, "pointer": True},
            )

    def _pointer(self, conversation: Conversation) -> dict[str, Any]:
        with backend_errors():
            return self.decision_store.get(POINTER_PREFIX + conversation.session_id) or {}

    # --- profile ----------------------------------------------------------------------
    def _update_profile(self, user_id: str, message: IncomingMessage) -> None:
        fields = {f"attributes.{k}": v for k, v in message.contact_attributes.items()}
        # Chatwoot names anonymous contacts itself: a name set through the API stays.
        name = {"name": message.contact_name} if message.contact_name else {}
        try:
            self.profiles.update(user_id, fields, if_missing=name)
        except InvalidInput as exc:
            # Contact attributes tailorbot cannot keep must not cost the customer a reply;
            # the log names the user by digest only (logs must not hold user ids).
            logger.warning(
                "chatwoot: contact attributes of %s not stored: %s", user_ref(user_id), exc
            )


def _decision_of(pointer: dict[str, Any]) -> str | None:
    return str(pointer["decision_id"]) if pointer.get("decision_id") else None


def _answered_already(pointer: dict[str, Any], message_id: int | None) -> bool:
    """Whether the conversation's pointer shows ``message_id`` (or a later one) handled:
    Chatwoot's message ids grow, so a redelivery is never above the last one answered."""
    last = pointer.get("message_id")
    return message_id is not None and isinstance(last, int) and message_id <= last


def _handoff_event(conversation: Conversation, event_id: str, reason: str) -> dict[str, Any]:
    return {
        "type": "handoff",
        "event_id": event_id,
        "user_id": conversation.user_id,
        "session_id": conversation.session_id,
        "timestamp": now_iso(),
        "channel": CHANNEL,
        "reason": reason,
    }


def _resolution_event(conversation: Conversation, at: int | None) -> dict[str, Any]:
    # One per resolution: a redelivery carries the same last activity, a resolution after
    # the conversation was reopened a later one.
    suffix = f"-{at}" if at is not None else ""
    return {
        "type": "resolution",
        "event_id": f"{conversation.session_id}-resolved{suffix}",
        "user_id": conversation.user_id,
        "session_id": conversation.session_id,
        "timestamp": now_iso(),
        "channel": CHANNEL,
        "resolved": True,
    }
