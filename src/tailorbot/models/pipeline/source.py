"""Where training data comes from: every decoded event of the log or the archive in a window.

A log record the stream worker would not apply (not JSON, or without ``user_id``,
``event_id``, ``session_id``, ``type`` or a readable ``timestamp``: a dead letter of the
workers) is skipped here too, and listed in ``skipped`` when the caller asks.

>>> import tempfile
>>> from tailorbot.log import open_log
>>> log = open_log(f"sqlite:///{tempfile.mkdtemp()}/log.db", 2)
>>> _ = log.append([("u1", b'{"type": "session_started", "event_id": "e1", "user_id": "u1",'
...                 b' "session_id": "s1", "timestamp": "2026-01-01T10:00:00Z"}'),
...                 ("u1", b'not json'), ("u1", b'{"type": "session_ended", "user_id": "u1"}')])
>>> skipped = []
>>> [e["event_id"] for e in log_events(log, skipped=skipped)], len(skipped)
(['e1'], 2)
>>> log.close()
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from tailorbot.archive.base import EventArchive
from tailorbot.events.codec import MALFORMED, applicable_event
from tailorbot.log.base import EventLog, LogRecord


def applicable_records(
    log: EventLog, skipped: list[tuple[LogRecord, str]] | None = None
) -> Iterator[tuple[float, LogRecord, dict[str, Any]]]:
    """``(epoch time, record, event)`` of every record of the log the stream worker would
    apply, partition by partition; the others are left out (and, with ``skipped``, listed
    there with the reason)."""
    for partition in range(log.num_partitions):
        for record in log.read_all(partition):
            try:
                event, ts = applicable_event(record.value)
            except MALFORMED as exc:
                if skipped is not None:
                    skipped.append((record, f"undecodable: {exc}"))
                continue
            yield ts, record, event


def log_events(
    log: EventLog,
    since: datetime | None = None,
    until: datetime | None = None,
    skipped: list[tuple[LogRecord, str]] | None = None,
) -> list[dict[str, Any]]:
    """Events of every partition with ``since <= timestamp < until``, in event-time order;
    the records the stream worker would not apply are left out (and, with ``skipped``,
    listed there with the reason)."""
    low = since.timestamp() if since is not None else float("-inf")
    high = until.timestamp() if until is not None else float("inf")
    found = [
        (ts, str(event["event_id"]), event)
        for ts, _, event in applicable_records(log, skipped)
        if low <= ts < high
    ]
    found.sort(key=lambda item: item[:2])
    return [event for _, _, event in found]


def archive_events(
    archive: EventArchive, since: datetime | None = None, until: datetime | None = None
) -> list[dict[str, Any]]:
    """Archived events with ``since <= timestamp < until``, in event-time order."""
    events = list(archive.iter_events(since, until))
    events.sort(key=lambda e: (datetime.fromisoformat(e["timestamp"]).timestamp(), e["event_id"]))
    return events
