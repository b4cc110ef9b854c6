from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from tailorbot.events.schema import EVENT_ADAPTER, validation_context

BASE = {"type": "session_started", "user_id": "u1", "session_id": "s1"}


@pytest.mark.parametrize(
    "timestamp",
    [
        "9999-12-31T23:59:59-14:00",  # past year 9999 once in UTC
        "0001-01-01T00:00:00+14:00",  # before year 1 once in UTC
        "9999-12-31T23:59:59.999999-00:01",
    ],
)
@pytest.mark.parametrize("with_context", [True, False])
def test_a_timestamp_outside_the_utc_range_is_a_validation_error(
    timestamp: str, with_context: bool
) -> None:
    context = validation_context() if with_context else None
    with pytest.raises(ValidationError) as caught:
        EVENT_ADAPTER.validate_python({**BASE, "timestamp": timestamp}, context=context)
    (error,) = caught.value.errors(include_url=False)
    assert error["loc"][-1] == "timestamp"
    assert "outside the range" in error["msg"]


def test_the_edges_of_the_utc_range_are_still_rejected_as_too_old_or_too_far_ahead() -> None:
    context = validation_context(now=datetime(2026, 1, 1, tzinfo=UTC))
    for timestamp, reason in (
        ("9999-12-31T23:59:59+00:00", "in the future"),
        ("0001-01-01T00:00:00+00:00", "older than"),
    ):
        with pytest.raises(ValidationError, match=reason):
            EVENT_ADAPTER.validate_python({**BASE, "timestamp": timestamp}, context=context)


def test_huge_age_and_skew_bounds_do_not_overflow() -> None:
    context = validation_context(max_event_age_s=1e15, max_future_skew_s=1e15)
    event = EVENT_ADAPTER.validate_python(
        {**BASE, "timestamp": "0002-01-01T00:00:00Z"}, context=context
    )
    assert event.timestamp.year == 2
