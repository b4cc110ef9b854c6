"""Rasa custom actions that let tailorbot pick the answer (``rasa run actions``).

``action_tailorbot_answer`` sends the customer's last message to ``POST /v1/personalize``
and utters the variant tailorbot chose for this customer, with the recommended articles as
link buttons; when tailorbot's fallback fires it follows up with ``action_handoff`` (your
hand-over action: tailorbot's Rasa integration logs it as a handoff). The decision id is
kept in the slot ``tailorbot_decision_id`` so that ``action_tailorbot_feedback`` can report
the customer's rating (slot ``csat``, 1-5) against it.

Needs ``pip install rasa-sdk tailorbot`` (only tailorbot's client is used) and
``TAILORBOT_URL`` (default ``http://127.0.0.1:8000``), ``TAILORBOT_API_KEY`` when the
server has one. The logic lives in :func:`answer` and :func:`rate`, plain functions that
the tailorbot test suite runs against a real tailorbot server.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from tailorbot.client import Client, TailorbotError

DECISION_SLOT = "tailorbot_decision_id"
RATING_SLOT = "csat"
HANDOFF_ACTION = "action_handoff"
SORRY = "Sorry, I can't look that up right now. Let me get a colleague to help you."


@dataclass
class Reply:
    text: str
    decision_id: str | None = None
    handoff: bool = False
    links: list[dict[str, str]] = field(default_factory=list)  # title, url: URL buttons


def client_from_env() -> Client:
    return Client(
        os.environ.get("TAILORBOT_URL", "http://127.0.0.1:8000"),
        api_key=os.environ.get("TAILORBOT_API_KEY") or None,
        timeout=float(os.environ.get("TAILORBOT_TIMEOUT_S", "2")),
    )


def answer(client: Client, sender_id: str, text: str, channel: str | None = None) -> Reply:
    """tailorbot's answer to ``text``; a hand-over when tailorbot is unreachable."""
    context = {"channel": channel} if channel else None
    try:
        decision = client.personalize(sender_id, sender_id, text, context)
    except TailorbotError:
        return Reply(SORRY, handoff=True)
    links = [
        {"title": article.title, "url": article.url}
        for article in decision.articles
        if getattr(article, "url", None)
    ]
    return Reply(decision.response.text, decision.decision_id, decision.fallback.triggered, links)


def rate(client: Client, decision_id: str | None, rating: Any) -> bool:
    """Report a 1-5 rating on a decision; False when there is nothing to report."""
    if not decision_id or rating is None:
        return False
    try:
        client.feedback(decision_id, rating=int(rating))
    except (TailorbotError, ValueError):
        return False
    return True


try:  # the Rasa classes, when rasa-sdk is installed (it is not needed to test the logic)
    from rasa_sdk import Action, Tracker
    from rasa_sdk.events import FollowupAction, SlotSet
    from rasa_sdk.executor import CollectingDispatcher
except ImportError:  # pragma: no cover - exercised only inside a Rasa action server
    pass
else:

    class ActionTailorbotAnswer(Action):
        def name(self) -> str:
            return "action_tailorbot_answer"

        def run(
            self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
        ) -> list[dict[str, Any]]:
            text = tracker.latest_message.get("text") or ""
            with client_from_env() as client:
                reply = answer(client, tracker.sender_id, text, tracker.get_latest_input_channel())
            # URL buttons: a button's payload would come back to the bot as the user's message
            buttons = [
                {"title": link["title"], "url": link["url"], "type": "web_url"}
                for link in reply.links
            ]
            dispatcher.utter_message(text=reply.text, buttons=buttons or None)
            events: list[dict[str, Any]] = [SlotSet(DECISION_SLOT, reply.decision_id)]
            if reply.handoff:
                events.append(FollowupAction(HANDOFF_ACTION))
            return events

    class ActionTailorbotFeedback(Action):
        def name(self) -> str:
            return "action_tailorbot_feedback"

        def run(
            self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
        ) -> list[dict[str, Any]]:
            with client_from_env() as client:
                rate(client, tracker.get_slot(DECISION_SLOT), tracker.get_slot(RATING_SLOT))
            return []
