"""tailorbot as a Chatwoot Agent Bot: what each webhook action does.

:class:`ChatwootBot` runs the actions that :func:`~tailorbot.integrations.chatwoot.parse_webhook`
reads, over the decision service, the profile store and the event sink:

* an incoming message: the contact's name and custom attributes go into the profile, the
  message is personalized (user ``chatwoot-<contact>``, session
  ``chatwoot-<account>-<conversation>``), the chosen variant is queued as the bot's reply
  and, when the fallback fired, the conversation is handed to the agents
  (``toggle_status`` ``open``, and a ``handoff`` event);
* a CSAT answer: ``rating`` feedback on the conversation's last decision (the bandit's
  reward);
* a resolved conversation: a ``resolution`` event and ``resolved`` feedback on the last
  decision.

The conversation's last decision is remembered in the decision store under
``chatwoot:last:<session>`` (shared by every server process, erased with the user).
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

from tailorbot.config import Settings
from tailorbot.errors import InvalidInput, NotFound, PayloadTooLarge, Problem, backend_errors
from tailorbot.events.codec import now_iso
from tailorbot.integrations.chatwoot import (
    Action,
    Conversation,
    ConversationResolved,
    CsatSubmitted,
    IncomingMessage,
)
from tailorbot.integrations.chatwoot_client import ChatwootClient
from tailorbot.integrations.profiles import ProfileUpdater
from tailorbot.services.decisions.schemas import (
    FeedbackRequest,
    FeedbackResponse,
    PersonalizeContext,
    PersonalizeRequest,
    PersonalizeResponse,
    personalize_request_from,
)
from tailorbot.services.ports import EventSink
from tailorbot.store.base import DecisionStore
from tailorbot.telemetry.logs import user_ref

logger = logging.getLogger(__name__)

CHANNEL = "chatwoot"
POINTER_PREFIX = "chatwoot:last:"
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
        if isinstance(action, CsatSubmitted):
            return self._csat(action)
        if isinstance(action, ConversationResolved):
            return self._resolved(action)
        return {"action": "ignored", "reason": action.reason}

    def _reply(self, message: IncomingMessage) -> dict[str, Any]:
        conversation = message.conversation
        # What personalize would refuse is refused before the profile is written.
        request = self._request(message)
        self._update_profile(conversation.user_id, message)
        decision = self.decisions.personalize(request)
        self._remember(conversation, decision.decision_id)
        queued = self.client.send_message(
            conversation.account_id, conversation.conversation_id, decision.response.text
        )
        handoff = decision.fallback.triggered
        if handoff:
            self.events.ingest([_handoff_event(conversation, decision)])
            queued = (
                self.client.toggle_status(
                    conversation.account_id, conversation.conversation_id, "open"
                )
                and queued
            )
        return {
            "action": "handoff" if handoff else "replied",
            "decision_id": decision.decision_id,
            "queued": queued,
        }

    def _request(self, message: IncomingMessage) -> PersonalizeRequest:
        limit = self.decisions.settings.max_text_chars
        if len(message.text) > limit:
            reason = f"content is {len(message.text)} characters; at most {limit} are accepted"
            raise PayloadTooLarge(reason, problems=[Problem(None, "content", reason)])
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
        decision_id = self._last_decision(csat.conversation)
        if decision_id is None:
            return {"action": "ignored", "reason": "no decision in this conversation"}
        result = self._feedback(FeedbackRequest(decision_id=decision_id, rating=csat.rating))
        return {"action": "feedback", "decision_id": decision_id, "applied": result}

    def _resolved(self, resolved: ConversationResolved) -> dict[str, Any]:
        conversation = resolved.conversation
        self.events.ingest([_resolution_event(conversation)])
        decision_id = self._last_decision(conversation)
        applied = False
        if decision_id is not None:
            applied = self._feedback(FeedbackRequest(decision_id=decision_id, resolved=True))
        return {"action": "resolved", "decision_id": decision_id, "applied": applied}

    def _feedback(self, request: FeedbackRequest) -> bool:
        try:
            return self.decisions.feedback(request).applied
        except NotFound:  # the decision expired or the user was erased meanwhile
            return False

    # --- the conversation's last decision ---------------------------------------------
    def _remember(self, conversation: Conversation, decision_id: str) -> None:
        with backend_errors():
            self.decision_store.put(
                POINTER_PREFIX + conversation.session_id,
                conversation.user_id,
                {"decision_id": decision_id, "pointer": True},
            )

    def _last_decision(self, conversation: Conversation) -> str | None:
        with backend_errors():
            pointer = self.decision_store.get(POINTER_PREFIX + conversation.session_id)
        return str(pointer["decision_id"]) if pointer and pointer.get("decision_id") else None

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


def _handoff_event(conversation: Conversation, decision: PersonalizeResponse) -> dict[str, Any]:
    return {
        "type": "handoff",
        "event_id": f"{decision.decision_id}-handoff",
        "user_id": conversation.user_id,
        "session_id": conversation.session_id,
        "timestamp": now_iso(),
        "channel": CHANNEL,
        "reason": f"fallback: {decision.fallback.reason}",
    }


def _resolution_event(conversation: Conversation) -> dict[str, Any]:
    return {
        "type": "resolution",
        "event_id": f"{conversation.session_id}-resolved",
        "user_id": conversation.user_id,
        "session_id": conversation.session_id,
        "timestamp": now_iso(),
        "channel": CHANNEL,
        "resolved": True,
    }
