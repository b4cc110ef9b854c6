"""Where training data comes from: every decoded event of the log or the archive in a window.

A log record the stream worker would not apply (not JSON, or without ``user_id``,
``event_id``, ``session_id``, ``type`` or a readable ``timestamp``: a dead letter of the
workers) is skipped here too, and listed in ``skipped`` when the caller asks. Given the feature
store, so is a record a user's erasure drops (:meth:`~tailorbot.store.base.Erasure.drops`, the
worker's own rule): one that reached the log after the erasure (an event re-sent, dated before
it; a decision's message event another process appended) must not bring the user back.

>>> import tempfile
>>> from tailorbot.log import open_log
>>> log = open_log(f"sqlite:///{tempfile.mkdtemp()}/log.db", 2)
>>> _ = log.append([("u1", b'{"type": "session_started", "event_id": "e1", "user_id": "u1",'
...                 b' "session_id": "s1", "timestamp": "2026-01-01T10:00:00Z"}'),
...                 ("u1", b'not json'), ("u1", b'{"type": "session_ended", "user_id": "u1"}')])
>>> skipped = []
>>> [e["event_id"] for e in log_events(log, skipped=skipped, features=None)], len(skipped)
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
from tailorbot.store.base import FeatureStore

TimedRecord = tuple[float, LogRecord, dict[str, Any]]
# Erasures are read for this many records at a time: one store read per slice (as the stream
# worker reads them once per batch), and no single read for a whole partition's users.
ERASURE_SLICE = 5000


def applicable_records(
    log: EventLog,
    skipped: list[tuple[LogRecord, str]] | None = None,
    *,
    features: FeatureStore | None,
) -> Iterator[TimedRecord]:
    """``(epoch time, record, event)`` of every record of the log the stream worker would
    apply, partition by partition; the others are left out (and, with ``skipped``, listed
    there with the reason). With ``features``, so are the records its erasures drop; it is
    required, so that no reader of a served log forgets them (``None``: a log no server
    erases from)."""
    for partition in range(log.num_partitions):
        records = log.read_all(partition)
        for start in range(0, len(records), ERASURE_SLICE):
            decoded = _decoded(records[start : start + ERASURE_SLICE], skipped)
            yield from decoded if features is None else _unerased(decoded, features)


def _decoded(
    records: list[LogRecord], skipped: list[tuple[LogRecord, str]] | None
) -> list[TimedRecord]:
    found: list[TimedRecord] = []
    for record in records:
        try:
            event, ts = applicable_event(record.value)
        except MALFORMED as exc:
            if skipped is not None:
                skipped.append((record, f"undecodable: {exc}"))
            continue
        found.append((ts, record, event))
    return found


def _unerased(items: list[TimedRecord], features: FeatureStore) -> list[TimedRecord]:
    """The items their user's erasure does not drop; keyed by the event's user, as the worker
    groups them."""
    erasures = features.erasures({event["user_id"] for _, _, event in items})
    if not erasures:
        return items
    return [
        (ts, record, event)
        for ts, record, event in items
        if (erasure := erasures.get(event["user_id"])) is None
        or not erasure.drops(record.offset, ts)
    ]


def log_events(
    log: EventLog,
    since: datetime | None = None,
    until: datetime | None = None,
    skipped: list[tuple[LogRecord, str]] | None = None,
    *,
    features: FeatureStore | None,
) -> list[dict[str, Any]]:
    """Events of every partition with ``since <= timestamp < until``, in event-time order;
    the records the stream worker would not apply are left out (and, with ``skipped``,
    listed there with the reason), and with ``features`` those its erasures drop."""
    low = since.timestamp() if since is not None else float("-inf")
    high = until.timestamp() if until is not None else float("inf")
    found = [
        (ts, str(event["event_id"]), event)
        for ts, _, event in applicable_records(log, skipped, features=features)
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
