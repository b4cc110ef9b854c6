from __future__ import annotations

from tailorbot.events.batch import find_repeats
from tailorbot.events.schema import EVENT_ADAPTER


def _event(event_id: str | None = None, **fields):
    raw = {
        "type": "message",
        "role": "customer",
        "text": "hi",
        "user_id": "u1",
        "session_id": "s1",
        "timestamp": "2026-01-01T10:00:00Z",
        **fields,
    }
    if event_id is not None:
        raw["event_id"] = event_id
    return EVENT_ADAPTER.validate_python(raw)


def test_the_same_event_twice_is_one_event_and_a_duplicate() -> None:
    batch = [(0, _event("e1")), (1, _event("e2")), (2, _event("e1")), (3, _event("e1"))]
    repeats = find_repeats(batch)
    assert [index for index, _ in repeats.unique] == [0, 1]
    assert repeats.duplicates == {2: 0, 3: 0}
    assert repeats.conflicts == {}


def test_the_same_id_on_different_content_is_a_conflict() -> None:
    batch = [(0, _event("e1", text="hi")), (1, _event("e1", text="bye"))]
    repeats = find_repeats(batch)
    assert [index for index, _ in repeats.unique] == [0]
    assert repeats.conflicts == {1: 0} and repeats.duplicates == {}


def test_assigned_ids_never_repeat_and_indexes_skip_rejected_events() -> None:
    batch = [(0, _event()), (2, _event()), (5, _event("x")), (7, _event("x"))]
    repeats = find_repeats(batch)
    assert [index for index, _ in repeats.unique] == [0, 2, 5]
    assert repeats.duplicates == {7: 5}
