from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest

from tailorbot.errors import InvalidInput
from tailorbot.events.schema import EVENT_ADAPTER, validation_context
from tailorbot.integrations.rasa import RasaEventMapper


def classic_tracker(sender: str, t0: float) -> list[dict]:
    """A Rasa conversation as the event broker publishes it (classic, flat shape)."""
    return [
        {"sender_id": sender, "event": "action", "timestamp": t0, "name": "action_session_start"},
        {"sender_id": sender, "event": "session_started", "timestamp": t0 + 0.1},
        {
            "sender_id": sender,
            "event": "user",
            "timestamp": t0 + 1,
            "text": "my card still hasn't arrived",
            "parse_data": {
                "intent": {"id": 301, "name": "card_arrival", "confidence": 0.87},
                "entities": [],
                "text": "my card still hasn't arrived",
                "intent_ranking": [{"name": "card_arrival", "confidence": 0.87}],
            },
            "input_channel": "rest",
            "message_id": "94838d6f49ff4366b254b6f6d23a90cf",
            "metadata": {"locale": "en-GB", "nested": {"dropped": True}},
        },
        {
            "sender_id": sender,
            "event": "slot",
            "timestamp": t0 + 1.1,
            "name": "plan",
            "value": "Unlimited 5G",
        },
        {
            "sender_id": sender,
            "event": "slot",
            "timestamp": t0 + 1.2,
            "name": "requested_slot",
            "value": None,
        },
        {
            "sender_id": sender,
            "event": "action",
            "timestamp": t0 + 1.3,
            "name": "utter_card_arrival",
            "policy": "RulePolicy",
            "confidence": 1.0,
        },
        {
            "sender_id": sender,
            "event": "bot",
            "timestamp": t0 + 1.4,
            "text": "Cards arrive within 5 working days.",
            "data": {},
            "metadata": {},
        },
        {
            "sender_id": sender,
            "event": "action",
            "timestamp": t0 + 2,
            "name": "action_handoff_to_human",
        },
        {"sender_id": sender, "event": "restart", "timestamp": t0 + 3},
    ]


def test_classic_tracker_events_map_to_tailorbot_events() -> None:
    t0 = time.time() - 60
    mapper = RasaEventMapper(slot_attributes={"plan": "attributes.plan"})
    batch = mapper.map(classic_tracker("c-42", t0))
    assert [(e["type"], e.get("role")) for e in batch.events] == [
        ("session_started", None),
        ("message", "customer"),
        ("message", "bot"),
        ("handoff", None),
        ("session_ended", None),
    ]
    customer = batch.events[1]
    assert customer["intent"] == "card_arrival" and customer["confidence"] == 0.87
    assert customer["channel"] == "rest" and customer["session_id"] == "c-42"
    assert customer["metadata"]["locale"] == "en-GB" and "nested" not in customer["metadata"]
    assert customer["metadata"]["rasa_message_id"] == "94838d6f49ff4366b254b6f6d23a90cf"
    assert batch.events[3]["reason"] == "rasa action action_handoff_to_human"
    assert batch.profiles == {"c-42": {"attributes.plan": "Unlimited 5G"}}
    assert batch.skipped == 4  # two ordinary actions, two slots (one not configured)
    # every mapped event is valid for ingestion, timestamps included
    context = validation_context()
    for event in batch.events:
        EVENT_ADAPTER.validate_python(event, context=context)
    assert datetime.fromisoformat(customer["timestamp"]) == datetime.fromtimestamp(t0 + 1, UTC)


def test_ids_are_stable_so_redelivery_counts_once() -> None:
    t0 = time.time()
    mapper = RasaEventMapper()
    first = [e["event_id"] for e in mapper.map(classic_tracker("c-1", t0)).events]
    again = [e["event_id"] for e in mapper.map(classic_tracker("c-1", t0)).events]
    other = [e["event_id"] for e in mapper.map(classic_tracker("c-2", t0)).events]
    assert first == again and len(set(first)) == len(first)
    assert not set(first) & set(other)


def test_envelope_shape() -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    base = {"conversation_id": "c-7", "session_id": "s-7", "user_id": "u", "metadata": {}}
    events = [
        {
            **base,
            "event_id": "e1",
            "sequence": 0,
            "timestamp": now.isoformat(),
            "session_started": {},
        },
        {
            **base,
            "event_id": "e2",
            "sequence": 1,
            "timestamp": now.isoformat().replace("+00:00", "Z"),
            "user": {"text": "roaming costs?", "intent": {"name": "roaming", "confidence": 0.7}},
        },
        {
            **base,
            "event_id": "e3",
            "sequence": 2,
            "timestamp": now.timestamp(),
            "memory_set": {"name": "plan", "value_json": '"Travel"'},
        },
        {
            **base,
            "event_id": "e4",
            "sequence": 3,
            "timestamp": now.timestamp(),
            "bot": {"text": "Roaming is included in the EU."},
        },
        {
            **base,
            "event_id": "e5",
            "sequence": 4,
            "timestamp": now.timestamp(),
            "skill_activated": {"name": "roaming"},
        },
    ]
    batch = RasaEventMapper(slot_attributes={"plan": "attributes.plan"}).map(events)
    assert [(e["type"], e["event_id"], e["session_id"]) for e in batch.events] == [
        ("session_started", "e1", "s-7"),
        ("message", "e2", "s-7"),
        ("message", "e4", "s-7"),
    ]
    assert batch.events[1]["intent"] == "roaming"
    assert batch.events[1]["timestamp"] == now.isoformat()
    assert batch.events[1]["metadata"]["rasa_sequence"] == 1
    assert batch.profiles == {"c-7": {"attributes.plan": "Travel"}}
    assert batch.skipped == 2


def test_slots_to_profile_fields_and_handoff_patterns() -> None:
    t = time.time()
    mapper = RasaEventMapper(
        slot_attributes={"customer_tier": "tier", "cart": "attributes.cart"},
        handoff_actions=["action_escalate"],
    )
    batch = mapper.map(
        [
            {
                "sender_id": "u",
                "event": "slot",
                "timestamp": t,
                "name": "customer_tier",
                "value": "gold",
            },
            {
                "sender_id": "u",
                "event": "slot",
                "timestamp": t,
                "name": "cart",
                "value": ["sim", "phone"],
            },
            {"sender_id": "u", "event": "action", "timestamp": t, "name": "action_escalate"},
            {"sender_id": "u", "event": "action", "timestamp": t, "name": "action_handoff"},
        ]
    )
    assert batch.profiles == {"u": {"tier": "gold", "attributes.cart": '["sim", "phone"]'}}
    assert [e["type"] for e in batch.events] == ["handoff"]  # patterns replace the defaults


def test_bad_events_are_named_with_index_and_field() -> None:
    with pytest.raises(InvalidInput) as caught:
        RasaEventMapper().map(
            [
                {"sender_id": "ok", "event": "user", "timestamp": time.time(), "text": "hi"},
                {"event": "user", "timestamp": 1.0, "text": "hi"},
                {"sender_id": "has space", "event": "user", "timestamp": 1.0},
                {"sender_id": "u", "event": "user", "timestamp": "yesterday"},
                {"conversation_id": "u", "timestamp": 1.0, "user": {}, "bot": {}},
                {"conversation_id": "u", "timestamp": 1.0, "memory_set": {"value_json": "{"}},
                "not an object",
            ]
        )
    assert [(p.index, p.field) for p in caught.value.problems] == [
        (1, "sender_id"),
        (2, "sender_id"),
        (3, "timestamp"),
        (4, "(payload)"),
        (6, "(event)"),
    ]
    # a slot that is not configured is not even parsed
    with pytest.raises(InvalidInput) as caught:
        RasaEventMapper(slot_attributes={"x": "tier"}).map(
            [
                {
                    "conversation_id": "u",
                    "timestamp": 1.0,
                    "memory_set": {"name": "x", "value_json": "{"},
                }
            ]
        )
    assert caught.value.problems[0].field == "value_json"
