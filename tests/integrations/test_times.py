"""One reading of platform times for every adapter (integrations/times.py)."""

from __future__ import annotations

import math
from datetime import timedelta

import pytest

from tailorbot.integrations.chatwoot import _epoch
from tailorbot.integrations.times import parse_time


@pytest.mark.parametrize(
    ("value", "epoch"),
    [
        (1627063368, 1627063368.0),
        (1627063368.25, 1627063368.25),
        ("2021-07-23T18:02:48.000Z", 1627063368.0),
        ("2021-07-23T20:02:48+02:00", 1627063368.0),
        (-1, -1.0),
    ],
)
def test_epoch_seconds_and_zoned_text_read_alike(value: object, epoch: float) -> None:
    parsed = parse_time(value)
    assert parsed.utcoffset() == timedelta(0)
    assert parsed.timestamp() == epoch
    assert _epoch(value) == epoch


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (1e20, "not a usable epoch time"),
        (math.nan, "not a usable epoch time"),
        (math.inf, "not a usable epoch time"),
        ("yesterday", "neither epoch seconds nor RFC 3339"),
        ("2021-07-23T18:02:48", "need a time zone"),
        ("0001-01-01T00:00:00+01:00", "outside years 1-9999"),
        (None, "missing"),
        (True, "missing"),
        ([1], "missing"),
    ],
)
def test_anything_else_is_refused_with_its_reason(value: object, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        parse_time(value)
    assert _epoch(value) is None  # Chatwoot: an unknown time, not an error
