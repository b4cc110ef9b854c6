"""How an accepted event is stored in the log: its JSON form, encoded with orjson.

>>> from tailorbot.events.schema import EVENT_ADAPTER
>>> ev = EVENT_ADAPTER.validate_python({"type": "session_ended", "event_id": "e1",
...     "user_id": "u1", "session_id": "s1", "timestamp": "2026-01-01T10:00:00Z"})
>>> decode_event(encode_event(ev))["timestamp"]
'2026-01-01T10:00:00Z'
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

import orjson

from tailorbot.events.schema import EventBase


def encode_event(event: EventBase, ingested_at: float | None = None) -> bytes:
    """The stored form; ``ingested_at`` (epoch seconds at the door) lets the stream processor
    measure event-to-feature freshness."""
    # orjson over the instance's fields: the bytes of pydantic's model_dump_json (the fields
    # in the same order, the timestamp in UTC with "Z"; tests/events/test_codec.py holds them
    # equal for every event type), at a quarter of its cost, and no concatenation after.
    fields = event.__dict__
    if ingested_at is not None:
        fields = {**fields, "ingested_at": ingested_at}
    return orjson.dumps(fields, option=orjson.OPT_UTC_Z)


def decode_event(value: bytes) -> dict[str, Any]:
    """The event as a plain dict (``timestamp`` stays an ISO-8601 string; ``ingested_at`` is
    present when the encoder was given it)."""
    result: dict[str, Any] = orjson.loads(value)
    return result


def event_epoch(event: dict[str, Any]) -> float:
    """Epoch seconds of a decoded event's timestamp."""
    return datetime.fromisoformat(event["timestamp"]).timestamp()


# What a log record that holds no applicable event raises in :func:`applicable_event`.
MALFORMED = (ValueError, TypeError, KeyError, AttributeError)


def applicable_event(value: bytes) -> tuple[dict[str, Any], float]:
    """A log record's event and its epoch time, or one of :data:`MALFORMED` for a record no
    consumer applies: not JSON, or without ``user_id``, ``event_id``, ``session_id``,
    ``type`` or a readable ``timestamp`` (the stream worker dead-letters it; the training
    sources skip it)."""
    event = orjson.loads(value)
    ts = datetime.fromisoformat(event["timestamp"]).timestamp()
    if type(event["user_id"]) is not str or not (
        event["event_id"] and event["session_id"] and event["type"]
    ):
        raise ValueError("user_id, event_id, session_id and type must be set")
    return event, ts


def now_iso() -> str:
    """The current UTC time as an ISO-8601 string, as events and decision records carry it:
    what ``datetime.now(UTC).isoformat()`` writes (:func:`iso_from_ns`)."""
    return iso_from_ns(time.time_ns())


# The second last written and its text: isoformat() formats every field of the time through
# the C library's printf, a microsecond and some 15 k instructions each decision; the date and
# the time of day change once a second.
_second: tuple[int, str] = (-1, "")


def iso_from_ns(ns: int) -> str:
    """The UTC time ``ns`` nanoseconds after the epoch (from 1970) as ``datetime.isoformat``
    writes it: the microseconds rounded down as ``datetime.now`` rounds them, and left out
    when they are 0.

    >>> iso_from_ns(1_764_000_000_123_456_789), iso_from_ns(1_764_000_000_000_000_999)
    ('2025-11-24T16:00:00.123456+00:00', '2025-11-24T16:00:00+00:00')
    """
    global _second
    seconds, rest = divmod(ns, 1_000_000_000)
    known, text = _second
    if seconds != known:
        text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
        _second = (seconds, text)  # one tuple: a thread reads the old pair or the new one
    micros = rest // 1000
    return f"{text}.{micros:06d}+00:00" if micros else text + "+00:00"
