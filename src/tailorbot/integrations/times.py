"""The times chatbot platforms send, read one way for every adapter.

Rasa's tracker events carry epoch seconds (its ProtoJSON broker payloads RFC 3339 text),
Chatwoot's message webhooks ISO 8601 text and its conversation payloads epoch seconds.
:func:`parse_time` accepts both forms and says why it refuses anything else; each adapter
decides what a refusal means (Rasa: the event is refused by name; Chatwoot: the time is
unknown).

>>> parse_time(1627063368).isoformat(), parse_time("2021-07-23T18:02:48.000Z").timestamp()
('2021-07-23T18:02:48+00:00', 1627063368.0)
>>> parse_time("2021-07-23T18:02:48")
Traceback (most recent call last):
ValueError: RFC 3339 timestamps need a time zone (e.g. Z)
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any


def parse_time(value: Any) -> datetime:
    """``value`` (epoch seconds, or ISO 8601 / RFC 3339 text with a zone) as an aware UTC
    datetime; ``ValueError`` with the reason otherwise."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            return datetime.fromtimestamp(float(value), UTC)
        except (OverflowError, OSError, ValueError):
            raise ValueError(f"{value!r} is not a usable epoch time") from None
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            raise ValueError(f"{value!r} is neither epoch seconds nor RFC 3339") from None
        if parsed.tzinfo is None:
            raise ValueError("RFC 3339 timestamps need a time zone (e.g. Z)")
        try:
            return parsed.astimezone(UTC)
        except OverflowError:  # 0001-01-01T00:00:00+01:00 is before year 1 in UTC
            raise ValueError(f"{value!r} is outside years 1-9999 once converted to UTC") from None
    raise ValueError("missing (epoch seconds or RFC 3339 text)")
