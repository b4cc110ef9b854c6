"""Rasa tracker events as tailorbot events.

Rasa publishes every tracker event to its event broker (a Kafka topic, default
``rasa_core_events``) as one JSON object. Two shapes are documented:

* **classic** (Rasa Open Source / Pro): a flat object with ``sender_id``, ``event`` (the type
  name: ``user``, ``bot``, ``action``, ``slot``, ``session_started``, ``restart``...),
  ``timestamp`` in epoch seconds and the type's own fields (``text``, ``parse_data.intent``,
  ``input_channel``, ``name``, ``value``, ``metadata``);
* **envelope** (Rasa's newer ProtoJSON events): envelope fields (``conversation_id``,
  ``timestamp``, ``event_id``, ``sequence``, ``session_id``, ``metadata``) and exactly one
  payload key (``user``, ``bot``, ``session_started``, ``slot_set`` / ``memory_set``...).

What becomes what: ``user`` → a customer message (with Rasa's intent and confidence),
``bot`` → a bot message, ``session_started`` → session start, ``restart`` → session end, an
action whose name matches ``handoff_actions`` → a handoff, a slot named in
``slot_attributes`` → that profile field. Everything else is skipped (counted). Event ids are
derived from the event's content when Rasa gives none, so a re-delivered broker message is
counted once (the stream worker is idempotent on ``event_id``).

>>> mapper = RasaEventMapper(slot_attributes={"plan": "attributes.plan"})
>>> batch = mapper.map([
...     {"sender_id": "c-42", "event": "user", "timestamp": 1767261600.5, "text": "hi",
...      "parse_data": {"intent": {"name": "greet", "confidence": 0.93}},
...      "input_channel": "rest"},
...     {"sender_id": "c-42", "event": "slot", "timestamp": 1767261601, "name": "plan",
...      "value": "Unlimited 5G"},
...     {"sender_id": "c-42", "event": "action", "timestamp": 1767261602,
...      "name": "action_handoff"}])
>>> [(e["type"], e.get("role"), e.get("intent")) for e in batch.events]
[('message', 'customer', 'greet'), ('handoff', None, None)]
>>> batch.events[0]["timestamp"], batch.events[0]["channel"]
('2026-01-01T10:00:00.500000+00:00', 'rest')
>>> batch.profiles
{'c-42': {'attributes.plan': 'Unlimited 5G'}}
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from tailorbot.errors import InvalidInput, Problem
from tailorbot.integrations.profiles import check_user_id
from tailorbot.integrations.times import parse_time

DEFAULT_HANDOFF_ACTIONS = ("*handoff*", "action_*human*")
ENVELOPE_PAYLOADS = ("user", "bot", "session_started", "slot_set", "memory_set", "action")
MAX_METADATA_KEYS = 16
MAX_METADATA_CHARS = 256
_CHANNEL = re.compile(r"[^a-z0-9_\-]+")
# used with fullmatch: "$" alone would let a trailing newline through
_IDENTIFIER = re.compile(r"[A-Za-z0-9_.:@\-]{1,128}")


@dataclass
class RasaBatch:
    """Tailorbot events (raw dicts for ingestion), profile updates and what was skipped."""

    events: list[dict[str, Any]] = field(default_factory=list)
    profiles: dict[str, dict[str, Any]] = field(default_factory=dict)  # user -> {field: value}
    skipped: int = 0
    # user -> {field: index of the event that set it}, to name the event of a refused value
    sources: dict[str, dict[str, int]] = field(default_factory=dict)
    event_indexes: list[int] = field(default_factory=list)  # of each event, in the input

    def index_of(self, user_id: str, profile_field: str) -> int | None:
        """The index of the event that set ``profile_field`` (``attributes`` or any field:
        the last event that set one) of ``user_id``'s profile."""
        fields = self.sources.get(user_id, {})
        if profile_field in fields:
            return fields[profile_field]
        prefix = profile_field.split(".", 1)[0] + "."
        found = [i for name, i in fields.items() if name.startswith(prefix)] or list(
            fields.values()
        )
        return max(found, default=None)

    def field_times(self, raw_events: Sequence[Any]) -> dict[str, dict[str, float]]:
        """When each profile field was set (``raw_events``: the input this batch was mapped
        from): the epoch seconds of its slot event, user -> field -> time."""
        # The mapper read these events' times already: a field's event has a valid one.
        return {
            user_id: {
                name: _timestamp(raw_events[index].get("timestamp")).timestamp()
                for name, index in fields.items()
            }
            for user_id, fields in self.sources.items()
        }


class RasaEventMapper:
    """Map Rasa tracker events (either documented shape) to tailorbot events.

    ``slot_attributes`` maps a slot name to a profile field (``name``, ``tier``,
    ``language``, ``region`` or ``attributes.<name>``); ``handoff_actions`` are
    shell-style patterns of action names that mean "a human takes over".
    """

    def __init__(
        self,
        slot_attributes: Mapping[str, str] | None = None,
        handoff_actions: Iterable[str] = DEFAULT_HANDOFF_ACTIONS,
        default_channel: str = "rasa",
    ) -> None:
        self.slot_attributes = dict(slot_attributes or {})
        self.handoff_actions = tuple(handoff_actions)
        self.default_channel = default_channel

    def map(self, raw_events: Iterable[Any]) -> RasaBatch:
        """Map a list of Rasa events; raises :class:`InvalidInput` naming each bad one."""
        batch = RasaBatch()
        problems: list[Problem] = []
        for index, raw in enumerate(raw_events):
            try:
                self._map_one(raw, batch, index)
            except _Bad as bad:
                problems.append(Problem(index, bad.field, bad.reason))
            except RecursionError:  # a value nested deeper than Python can walk
                problems.append(Problem(index, "(event)", "values are nested too deeply"))
        if problems:
            raise InvalidInput(
                f"{len(problems)} Rasa event(s) could not be read", problems=problems
            )
        return batch

    # --- one event --------------------------------------------------------------------
    def _map_one(self, raw: Any, batch: RasaBatch, index: int) -> None:
        if not isinstance(raw, dict):
            raise _Bad("(event)", "each Rasa event must be a JSON object")
        envelope: Mapping[str, Any] = raw
        body: Mapping[str, Any] = raw
        if "event" in raw:
            # a type that is no string is no type tailorbot knows: skipped like one
            kind = raw["event"] if isinstance(raw["event"], str) else "(unknown)"
            user_id = _identifier(raw, "sender_id")
        else:
            kind, body = _envelope_payload(raw)
            user_id = _identifier(raw, "conversation_id")
        timestamp = _timestamp(envelope.get("timestamp"))
        base = {
            "user_id": user_id,
            "session_id": _session_id(envelope, user_id),
            "timestamp": timestamp.isoformat(),
            "channel": self._channel(body.get("input_channel") or envelope.get("input_channel")),
            "metadata": _metadata(envelope, kind),
        }
        event = self._event(kind, body, base, batch, index)
        if event is None:
            batch.skipped += 1
            return
        event["event_id"] = _event_id(envelope, event)
        batch.events.append(event)
        batch.event_indexes.append(index)

    def _event(
        self,
        kind: str,
        body: Mapping[str, Any],
        base: dict[str, Any],
        batch: RasaBatch,
        index: int,
    ) -> dict[str, Any] | None:
        if kind == "user":
            text = _text(body)
            if text is None:
                return None
            intent, confidence = _intent(body)
            message = {**base, "type": "message", "role": "customer", "text": text}
            if intent is not None:
                message["intent"] = intent
                if confidence is not None:
                    message["confidence"] = confidence
            return message
        if kind == "bot":
            text = _text(body)
            return (
                None if text is None else {**base, "type": "message", "role": "bot", "text": text}
            )
        if kind == "session_started":
            return {**base, "type": "session_started"}
        if kind == "restart":
            return {**base, "type": "session_ended"}
        if kind in ("action", "action_executed"):
            name = body.get("name") or body.get("action_name")
            if isinstance(name, str) and any(
                fnmatch.fnmatchcase(name, p) for p in self.handoff_actions
            ):
                return {**base, "type": "handoff", "reason": f"rasa action {name}"}
            return None
        if kind in ("slot", "slot_set", "memory_set"):
            self._slot(body, base["user_id"], batch, index)
            return None
        return None

    def _slot(self, body: Mapping[str, Any], user_id: str, batch: RasaBatch, index: int) -> None:
        name = body.get("name") or body.get("key") or body.get("slot")
        target = self.slot_attributes.get(name) if isinstance(name, str) else None
        if target is None:
            return
        value = body.get("value")
        if "value_json" in body:  # the envelope shape carries values as JSON text
            text = body["value_json"]
            if not isinstance(text, str):
                raise _Bad("value_json", "must be JSON text (a string)")
            try:
                value = json.loads(text)
            except json.JSONDecodeError as exc:
                raise _Bad("value_json", f"not valid JSON: {exc.msg}") from None
            except RecursionError:
                raise _Bad("value_json", "nested too deeply") from None
        if value is not None and not isinstance(value, str | int | float | bool):
            try:
                value = json.dumps(value)[:MAX_METADATA_CHARS]
            except RecursionError:
                raise _Bad("value", "nested too deeply") from None
        batch.profiles.setdefault(user_id, {})[target] = value
        batch.sources.setdefault(user_id, {})[target] = index

    def _channel(self, value: Any) -> str:
        channel = _CHANNEL.sub("-", str(value or "").lower()).strip("-")[:32]
        return channel or self.default_channel


class _Bad(Exception):
    def __init__(self, field: str, reason: str) -> None:
        super().__init__(reason)
        self.field = field
        self.reason = reason


def _envelope_payload(raw: Mapping[str, Any]) -> tuple[str, Mapping[str, Any]]:
    """The one payload key of an envelope-shaped event, and its body."""
    if "conversation_id" not in raw:
        raise _Bad("event", "neither 'event' (classic shape) nor 'conversation_id' (envelope)")
    payloads = [key for key, value in raw.items() if isinstance(value, dict) and key != "metadata"]
    if len(payloads) != 1:
        found = ", ".join(payloads) or "none"
        raise _Bad("(payload)", f"expected exactly one payload key (e.g. user, bot); found {found}")
    return payloads[0], raw[payloads[0]]


def _identifier(raw: Mapping[str, Any], key: str) -> str:
    """The id at ``key``, checked by :func:`~tailorbot.integrations.profiles.check_user_id`
    (the rules and wording of events' user ids: a profile written under an id they refuse
    could not be erased)."""
    value = raw.get(key)
    if value is None or value == "":
        raise _Bad(key, "missing")
    if not isinstance(value, str | int) or isinstance(value, bool):
        raise _Bad(key, "must be a string")
    try:
        return check_user_id(str(value))
    except InvalidInput as exc:
        raise _Bad(key, "; ".join(p.reason for p in exc.problems)) from None


def _session_id(envelope: Mapping[str, Any], user_id: str) -> str:
    # Classic events carry no session id: a Rasa conversation (sender) is the session.
    session = envelope.get("session_id")
    if _is_identifier(session):
        return str(session)
    return user_id


def _is_identifier(value: Any) -> bool:
    return (
        isinstance(value, str | int)
        and not isinstance(value, bool)
        and _IDENTIFIER.fullmatch(str(value)) is not None
    )


def _timestamp(value: Any) -> datetime:
    try:
        return parse_time(value)
    except ValueError as exc:
        raise _Bad("timestamp", str(exc)) from None


def _text(body: Mapping[str, Any]) -> str | None:
    text = body.get("text")
    return text if isinstance(text, str) and text.strip() else None


def _intent(body: Mapping[str, Any]) -> tuple[str | None, float | None]:
    intent = body.get("intent")
    if not isinstance(intent, dict):
        parse_data = body.get("parse_data")
        intent = parse_data.get("intent") if isinstance(parse_data, dict) else None
    return rasa_intent(intent)


def rasa_intent(intent: Any) -> tuple[str | None, float | None]:
    """``(name, confidence)`` of a Rasa ``intent`` object; None for what is missing or invalid.

    >>> rasa_intent({"name": "card_arrival", "confidence": 0.93})
    ('card_arrival', 0.93)
    """
    if not isinstance(intent, dict):
        return None, None
    name = intent.get("name")
    if not isinstance(name, str) or not _IDENTIFIER.fullmatch(name):
        return None, None
    confidence = intent.get("confidence")
    if isinstance(confidence, int | float) and 0.0 <= confidence <= 1.0:
        return name, float(confidence)
    return name, None


def _metadata(envelope: Mapping[str, Any], kind: str) -> dict[str, Any]:
    found: dict[str, Any] = {"source": "rasa", "rasa_event": kind}
    for key in ("message_id", "sequence", "input_channel"):
        value = envelope.get(key)
        if isinstance(value, str | int) and not isinstance(value, bool):
            found[f"rasa_{key}"] = value
    extra = envelope.get("metadata")
    if isinstance(extra, dict):
        for key, value in extra.items():
            if len(found) >= MAX_METADATA_KEYS:
                break
            if isinstance(value, str | int | float | bool) and len(str(key)) <= 64:
                found[str(key)] = value[:MAX_METADATA_CHARS] if isinstance(value, str) else value
    return found


def _event_id(envelope: Mapping[str, Any], event: Mapping[str, Any]) -> str:
    given = envelope.get("event_id")
    if _is_identifier(given):
        return str(given)
    # Same Rasa event -> same id, so a re-delivered broker message is applied once.
    key = json.dumps(
        [event["user_id"], event["type"], event["timestamp"], event.get("text"), event.get("role")],
        ensure_ascii=False,
    )
    return "rasa-" + hashlib.sha256(key.encode()).hexdigest()[:32]
