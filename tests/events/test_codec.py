"""The stored form of an event is pydantic's JSON of it, byte for byte, written by orjson."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tailorbot.events.codec import decode_event, encode_event, iso_from_ns, now_iso
from tailorbot.events.schema import EVENT_ADAPTER, EVENT_TYPES

FLOATS = [0.0, -0.0, 1.0, 0.1, 0.5, 1e-7, 5e-324, 2.2250738585072014e-308, 0.30000000000000004,
          123456.789, 1e15, 1e16, 1e17, 1.5e300]  # fmt: skip
TEXTS = ["plain", "é ü 😀", "a\nb\t\x01\x1f\x7f", "\u2028\u2029", '/\\"', "<EMAIL>"]
TIMESTAMPS = ["2026-01-01T10:00:00Z", "2026-01-01T10:00:00.5+02:00",
              "2026-11-30T01:59:30.376483Z", "2026-11-30T01:59:30.000001-05:30",
              "0001-01-02T00:00:00Z", "9999-12-30T23:59:59Z"]  # fmt: skip
EXTRA: dict[str, dict[str, Any]] = {
    "message": {"role": "customer", "text": "hi", "intent": "card_arrival"},
    "article_viewed": {"article_id": "a1"},
    "article_feedback": {"article_id": "a1", "helpful": False},
    "rating": {"score": 4},
    "resolution": {"resolved": True, "article_id": None},
    "handoff": {"reason": "asked for a person"},
    "intent_label": {"intent": "card_arrival", "decision_id": "d1"},
}


def varied_events(rng: random.Random) -> list[dict[str, Any]]:
    out = []
    for model in EVENT_TYPES:
        kind = model.model_fields["type"].default
        for i in range(40):
            raw = {
                "type": kind,
                "user_id": f"u{i}",
                "session_id": "s1",
                "timestamp": rng.choice(TIMESTAMPS),
                "metadata": {
                    "f": rng.choice(FLOATS),
                    "i": rng.randint(-(2**63), 2**63 - 1),
                    "s": rng.choice(TEXTS),
                    "b": rng.random() < 0.5,
                    "n": None,
                },
                **EXTRA.get(kind, {}),
            }
            if i % 2:
                raw["event_id"] = f"e{i}"
                raw["channel"] = "app"
            if kind == "message":
                raw["text"] = rng.choice(TEXTS)
                raw["confidence"] = rng.choice([f for f in FLOATS if 0 <= f <= 1])
            out.append(raw)
    return out


def test_the_stored_form_is_pydantics_json() -> None:
    for raw in varied_events(random.Random(5)):
        event = EVENT_ADAPTER.validate_python(raw)
        expected = event.model_dump_json().encode()
        assert encode_event(event) == expected, raw
        stamped = encode_event(event, ingested_at=1767261600.25)
        assert stamped == expected[:-1] + b',"ingested_at":1767261600.25}'
        assert (
            EVENT_ADAPTER.validate_python(
                {k: v for k, v in decode_event(stamped).items() if k != "ingested_at"}
            )
            == event
        )


def test_a_field_orjson_cannot_write_is_an_error_not_other_bytes() -> None:
    event = EVENT_ADAPTER.validate_python(varied_events(random.Random(1))[0])
    odd = event.model_copy(update={"metadata": {"x": object()}})
    with pytest.raises(TypeError):
        encode_event(odd)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_LAST_NS = int((datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC) - _EPOCH).total_seconds()) * 10**9


@settings(max_examples=500, deadline=None)
@given(
    st.one_of(
        st.integers(0, _LAST_NS),
        st.integers(1_700_000_000, 1_900_000_000).map(lambda s: s * 10**9),  # on the second
        st.integers(1_700_000_000_000_000, 1_900_000_000_000_000).map(lambda us: us * 1000 + 999),
    )
)
def test_a_time_is_written_as_datetime_isoformat_writes_it(ns: int) -> None:
    expected = (_EPOCH + timedelta(microseconds=ns // 1000)).isoformat()
    assert iso_from_ns(ns) == expected
    assert iso_from_ns(ns) == expected  # the second's text remembered gives the same


def test_now_is_written_between_the_clock_readings_around_it() -> None:
    for _ in range(2000):
        before = datetime.now(UTC)
        now = datetime.fromisoformat(now_iso())
        assert before <= now <= datetime.now(UTC)
        assert now.tzinfo is not None and now.utcoffset() == timedelta(0)
