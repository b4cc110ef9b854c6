"""An event built from checked values, compiled (csrc/checked.c, checked_model) against its
Python reference (checked_event_in_python): the same slots, the values' dict itself as the
instance's, an event equal to the one validation makes, and as frozen."""

from __future__ import annotations

import random

import pytest
from pydantic import ValidationError

from tailorbot.events.schema import (
    EVENT_ADAPTER,
    EVENT_TYPES,
    MODEL_SLOTS,
    Message,
    _field_names,
    checked_event,
    checked_event_in_python,
)
from tests.events.test_codec import varied_events
from tests.native_support import loops, needs_build

compiled = getattr(loops, "checked_model", None)  # None: not built (see native_support)


@needs_build
def test_every_event_type_is_built_as_the_reference_builds_it() -> None:
    seen = set()
    for raw in varied_events(random.Random(3)):
        validated = EVENT_ADAPTER.validate_python(raw)
        model = type(validated)
        seen.add(model)
        values = {name: getattr(validated, name) for name in model.model_fields}
        got = compiled(model, values, _field_names(model), MODEL_SLOTS)
        want = checked_event_in_python(model, dict(values))
        assert type(got) is model
        assert got.__dict__ is values  # the dict itself, as object.__setattr__ leaves it
        for slot in MODEL_SLOTS:
            assert getattr(got, slot) == getattr(want, slot), slot
        assert got == want == validated
        assert got.model_dump() == validated.model_dump()
        with pytest.raises(ValidationError):  # still frozen
            got.user_id = "other"
    assert seen == set(EVENT_TYPES)


@needs_build
def test_what_is_not_exactly_the_fields_is_left_to_python() -> None:
    event = EVENT_ADAPTER.validate_python(varied_events(random.Random(4))[0])
    model, names = type(event), _field_names(type(event))
    values = dict(event.__dict__)
    wrong = {
        "a field missing": {k: v for k, v in values.items() if k != "user_id"},
        "a field more": {**values, "score": 5},
        "a key that is no str": {**{k: v for k, v in values.items() if k != "user_id"}, 1: 2},
        "a dict of another type": type("Values", (dict,), {})(values),
    }
    for name, given in wrong.items():
        assert compiled(model, given, names, MODEL_SLOTS) is None, name
    assert compiled(model, values, set(names), MODEL_SLOTS) is None  # a set, not frozen
    with pytest.raises(ValueError, match="needs exactly its fields"):
        checked_event(model, wrong["a field more"])  # the reference says what is wrong
    with pytest.raises(ValueError, match="4 slot names"):
        compiled(model, values, names, MODEL_SLOTS[:3])
    with pytest.raises(TypeError):
        compiled("Message", values, names, MODEL_SLOTS)


def test_checked_event_serves_either_way(monkeypatch: pytest.MonkeyPatch) -> None:
    from tailorbot.events import schema

    event = EVENT_ADAPTER.validate_python(
        {"type": "message", "user_id": "u1", "session_id": "s1", "text": "hi", "role": "customer",
         "timestamp": "2026-01-01T10:00:00Z", "confidence": 0.5, "intent": "card_arrival"}
    )  # fmt: skip
    built = checked_event(Message, dict(event.__dict__))
    monkeypatch.setattr(schema, "native", lambda: None)
    assert checked_event(Message, dict(event.__dict__)) == built == event
