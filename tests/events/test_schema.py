from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from tailorbot.events.schema import EVENT_ADAPTER, validation_context

BASE = {"type": "session_started", "user_id": "u1", "session_id": "s1"}
NOW = datetime.now(UTC).isoformat()  # within the default age and skew bounds


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


def _field_errors(raw: dict) -> list[tuple[str, str]]:
    with pytest.raises(ValidationError) as caught:
        EVENT_ADAPTER.validate_python(
            {**BASE, "timestamp": "2026-01-01T10:00:00Z", **raw}, context=None
        )
    return [(str(e["loc"][1]), e["msg"]) for e in caught.value.errors(include_url=False)]


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ({"type": "rating", "score": True}, "score"),  # was stored as CSAT 1
        ({"type": "rating", "score": "5"}, "score"),  # was stored as 5
        ({"type": "rating", "score": 4.0}, "score"),
        ({"type": "article_feedback", "article_id": "a1", "helpful": "yes"}, "helpful"),
        ({"type": "article_feedback", "article_id": "a1", "helpful": 1}, "helpful"),
        ({"type": "resolution", "resolved": "false"}, "resolved"),
        ({"type": "message", "role": "bot", "text": "x", "confidence": "0.5"}, "confidence"),
    ],
)
def test_values_are_not_coerced_from_other_types(raw: dict, field: str) -> None:
    assert [name for name, _ in _field_errors(raw)] == [field]


@pytest.mark.parametrize(
    ("value", "words"),
    [
        (2**64, "64-bit"),
        (-(2**63) - 1, "64-bit"),
        (float("nan"), "finite"),
        (float("inf"), "finite"),
    ],
)
def test_metadata_numbers_must_fit_what_the_log_keeps(value: float, words: str) -> None:
    # orjson reads back at most 64-bit integers (a bigger one silently becomes a float)
    errors = _field_errors({"metadata": {"big": value}})
    assert len(errors) == 1 and errors[0][0] == "metadata"
    assert "metadata['big']" in errors[0][1] and words in errors[0][1]


def test_metadata_numbers_inside_the_range_keep_their_type() -> None:
    metadata = {"max": 2**63 - 1, "min": -(2**63), "flag": True, "ratio": 0.5, "s": "5"}
    event = EVENT_ADAPTER.validate_python(
        {**BASE, "timestamp": "2026-01-01T10:00:00Z", "metadata": metadata}
    )
    assert event.metadata == metadata
    assert [type(v) for v in event.metadata.values()] == [int, int, bool, float, str]


def _nested(depth: int) -> list:
    value: list = []
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize("name", ["x", "metadata", "text", "user_id"])
def test_a_value_nested_past_the_recursion_limit_is_a_validation_error(name: str) -> None:
    raw = {**BASE, "type": "message", "role": "customer", "text": "hi", "timestamp": NOW}
    with pytest.raises(ValidationError) as caught:
        EVENT_ADAPTER.validate_python({**raw, name: _nested(1000)}, context=validation_context())
    assert {error["loc"][1] for error in caught.value.errors(include_url=False)} == {name}


@pytest.mark.parametrize("name", ["user_id", "session_id", "event_id", "intent"])
def test_a_nul_in_an_identifier_is_refused_not_removed(name: str) -> None:
    raw = {**BASE, "type": "message", "role": "customer", "text": "hi", "timestamp": NOW}
    with pytest.raises(ValidationError) as caught:
        EVENT_ADAPTER.validate_python({**raw, name: "zz\x00top"})
    (error,) = caught.value.errors(include_url=False)
    assert error["loc"][1:] == (name,) and error["type"] == "string_pattern_mismatch"


def test_a_nul_is_removed_from_free_text_only() -> None:
    raw = {**BASE, "type": "handoff", "reason": "a\x00b", "timestamp": NOW}
    event = EVENT_ADAPTER.validate_python({**raw, "metadata": {"k\x00": "v\x00", "n": 1}})
    assert (event.reason, event.metadata) == ("ab", {"k": "v", "n": 1})
    with pytest.raises(ValidationError, match="Extra inputs"):  # not merged into "reason"
        EVENT_ADAPTER.validate_python({**raw, "rea\x00son": "x"})
