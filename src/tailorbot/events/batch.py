"""Repeats of an ``event_id`` inside one batch: what the door does with them.

A client that retries by resending a whole batch, or a buggy one that reuses ids, can put
the same ``event_id`` twice in one request. The same event twice is a *duplicate*: stored
once, the repeat answered ``"status": "duplicate"`` (not counted as accepted). The same id
on different content is a *conflict*: the repeat is rejected naming ``event_id``, since only
one of them can be the event the id stands for. (Across batches the stream processor drops
an ``event_id`` it already applied.)

>>> from tailorbot.events.schema import EVENT_ADAPTER
>>> def ev(**f):
...     return EVENT_ADAPTER.validate_python({"type": "rating", "user_id": "u1",
...         "session_id": "s1", "timestamp": "2026-01-01T10:00:00Z", **f})
>>> r = find_repeats([(0, ev(event_id="a", score=5)), (1, ev(event_id="a", score=5)),
...                   (2, ev(event_id="a", score=1)), (3, ev(event_id="b", score=2))])
>>> [i for i, _ in r.unique], r.duplicates, r.conflicts
([0, 3], {1: 0}, {2: 0})
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from tailorbot.events.schema import EventBase


@dataclass(slots=True)
class Repeats:
    """``unique``: the first event of each id, with its index in the batch; ``duplicates``
    and ``conflicts``: index of a repeat -> index of the first event with its id."""

    unique: list[tuple[int, EventBase]] = field(default_factory=list)
    duplicates: dict[int, int] = field(default_factory=dict)
    conflicts: dict[int, int] = field(default_factory=dict)


def find_repeats(events: Sequence[tuple[int, EventBase]]) -> Repeats:
    """Split validated ``(index, event)`` pairs into first occurrences and repeats."""
    result = Repeats()
    first: dict[str, tuple[int, EventBase]] = {}
    for index, event in events:
        seen = first.get(event.event_id)
        if seen is None:
            first[event.event_id] = (index, event)
            result.unique.append((index, event))
        elif seen[1] == event:
            result.duplicates[index] = seen[0]
        else:
            result.conflicts[index] = seen[0]
    return result


def conflict_reason(first_index: int) -> str:
    """The rejection reason of a repeat with different content.

    >>> conflict_reason(0)
    'repeats the event_id of event 0 in this batch with different content'
    """
    return f"repeats the event_id of event {first_index} in this batch with different content"
