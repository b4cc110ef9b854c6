"""The decision's message event built without the door's validation (``checked_message``)
is the event the door's validation makes of the same dict, or is left to the door."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from tailorbot.config import Settings
from tailorbot.errors import InvalidInput
from tailorbot.events.codec import now_iso
from tailorbot.events.schema import (
    EVENT_ADAPTER,
    MODEL_SLOTS,
    Message,
    SessionEnded,
    checked_event,
    new_event_id,
    validation_context,
)
from tailorbot.runtime import Runtime
from tailorbot.services.decisions.records import checked_message, message_event
from tailorbot.services.decisions.schemas import PersonalizeRequest

ID_CHARS = st.sampled_from("abcXYZ019_.:@-")
ids = st.text(ID_CHARS, min_size=1, max_size=40)
# any text the request takes: NULs, look-alike digits, e-mails, emoji, long runs of spaces
texts = st.text(
    st.one_of(
        st.characters(codec="utf-8", exclude_categories=("Cs",)),
        st.sampled_from(["\x00", "@", "4", "\uff14", " ", "\n"]),
    ),
    min_size=1,
    max_size=80,
)
intents = st.one_of(st.none(), ids, st.sampled_from(["card arrival", "", "x" * 129, "a/b"]))
channels = st.sampled_from(["chat", "web-widget", "voice_1"])
confidences = st.one_of(
    st.floats(0.0, 1.0),
    st.sampled_from([0.0, 1.0, 1.0000001, -0.0, -1e-9, math.nan, math.inf]),
)


def _request(user_id: str, session_id: str, text: str, channel: str) -> PersonalizeRequest | None:
    try:
        return PersonalizeRequest.model_validate(
            {"user_id": user_id, "session_id": session_id, "message": text,
             "context": {"channel": channel}}
        )  # fmt: skip
    except ValueError:  # not a request the route takes: no decision, no event
        return None


def _event(decision_id: str, request: PersonalizeRequest, prediction: Any, at: str) -> dict:
    """The message event a decision on ``request`` logs."""
    return message_event(
        decision_id, request.user_id, request.session_id, request.context.channel,
        request.message, prediction, at,
    )  # fmt: skip


def _door(event: dict[str, Any]) -> Any:
    """What the door's validation makes of ``event``, or None where it refuses it."""
    try:
        return EVENT_ADAPTER.validate_python(dict(event), context=validation_context())
    except ValueError:
        return None


@settings(max_examples=400, deadline=None)
@given(ids, ids, texts, channels, intents, confidences)
def test_a_checked_message_is_the_doors_event_or_left_to_the_door(
    user_id: str, session_id: str, text: str, channel: str, intent: str | None, confidence: float
) -> None:
    request = _request(user_id, session_id, text, channel)
    if request is None:
        return
    prediction = SimpleNamespace(name=intent, confidence=confidence)
    event = _event(new_event_id(), request, prediction, now_iso())
    checked = checked_message(dict(event))
    validated = _door(event)
    if checked is None:  # left to the door: it may take it, but the checked path may not
        assert not (0.0 <= event["confidence"] <= 1.0) or validated is None
        return
    assert validated is not None, "built an event the door refuses"
    assert checked == validated
    assert checked.model_fields_set == validated.model_fields_set
    assert checked.model_dump_json() == validated.model_dump_json()
    assert list(checked.__dict__) == list(validated.__dict__)
    assert checked.timestamp.tzinfo is validated.timestamp.tzinfo
    assert "\x00" not in checked.text


def test_the_door_s_refusals_are_left_to_it() -> None:
    request = PersonalizeRequest(user_id="u1", session_id="s1", message="hi")
    for name, confidence in (("card arrival", 0.5), ("ok", math.nan), ("ok", 1.5)):
        prediction = SimpleNamespace(name=name, confidence=confidence)
        event = _event(new_event_id(), request, prediction, now_iso())
        assert checked_message(event) is None
        assert _door(event) is None
    # a str subclass (numpy's str_): the door makes a str of it, the checked path leaves it
    subclassed = SimpleNamespace(name=type("Name", (str,), {})("card_arrival"), confidence=0.5)
    assert checked_message(_event(new_event_id(), request, subclassed, now_iso())) is None


def test_a_checked_event_sets_what_model_construct_sets() -> None:
    # checked_event writes these slots itself: a pydantic that adds one must be looked at
    assert set(BaseModel.__slots__) == set(MODEL_SLOTS)
    raw = {"event_id": "e1", "user_id": "u1", "session_id": "s1", "channel": "chat",
           "metadata": {}, "type": "session_ended"}  # fmt: skip
    validated = EVENT_ADAPTER.validate_python({**raw, "timestamp": "2026-01-01T00:00:00Z"})
    values = {name: getattr(validated, name) for name in SessionEnded.model_fields}
    built = checked_event(SessionEnded, values)
    constructed = SessionEnded.model_construct(**values)
    for slot in BaseModel.__slots__:
        assert getattr(built, slot) == getattr(constructed, slot), slot
    assert built == validated


@pytest.mark.parametrize("change", ["missing", "extra"])
def test_a_checked_event_needs_exactly_its_fields(change: str) -> None:
    request = PersonalizeRequest(user_id="u1", session_id="s1", message="hi")
    event = checked_message(
        _event("d1", request, SimpleNamespace(name="x", confidence=0.5), now_iso())
    )
    assert event is not None
    values = dict(event.__dict__)
    if change == "missing":
        del values["intent"]
    else:
        values["score"] = 5
    with pytest.raises(ValueError, match="needs exactly its fields"):
        checked_event(Message, values)


def _checked(received_at: str) -> Message:
    request = PersonalizeRequest(user_id="u1", session_id="s1", message="mail jo@example.com")
    prediction = SimpleNamespace(name="card_arrival", confidence=0.5)
    event = checked_message(_event(new_event_id(), request, prediction, received_at))
    assert event is not None
    return event


@pytest.mark.parametrize(
    ("bounds", "field"),
    [
        ({}, None),
        ({"max_metadata_keys": 0}, "metadata"),
        ({"max_metadata_value_chars": 16}, "metadata"),
        ({"max_event_age_s": 3600.0}, "timestamp"),
    ],
)
def test_the_settings_bounds_still_refuse_a_checked_event(
    tmp_path: Path, bounds: dict[str, Any], field: str | None
) -> None:
    # The schema checks these against the settings, where checked_message cannot: the door
    # checks them for a checked event, and refuses it as it refuses the dict.
    runtime = Runtime(Settings.load(data_dir=tmp_path, run_worker_in_server=False, **bounds))
    try:
        event = _checked((datetime.now(UTC) - timedelta(hours=2)).isoformat())
        if field is None:
            accepted = runtime.ingestion.accept_checked(event)
            assert accepted.text == "mail <EMAIL>"
            return
        with pytest.raises(InvalidInput) as refused:
            runtime.ingestion.accept_checked(event)
        assert [p.field for p in refused.value.problems] == [field]
    finally:
        runtime.stop()
