"""The training sources skip the log records the stream worker would not apply (dead
letters: not JSON, or without an id, a user, a type or a readable time), by the worker's
own rules, instead of stopping every offline command with a traceback."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from tailorbot.log import open_log
from tailorbot.log.base import LogRecord
from tailorbot.models.pipeline.source import log_events
from tailorbot.stream.loop import decode_records

GOOD = {
    "type": "session_started",
    "event_id": "e1",
    "user_id": "u1",
    "session_id": "s1",
    "timestamp": "2026-01-01T10:00:00Z",
}


def _without(name: str) -> bytes:
    return orjson.dumps({k: v for k, v in GOOD.items() if k != name})


def _with(**changes: object) -> bytes:
    return orjson.dumps({**GOOD, **changes})


# Every kind of record the worker refuses, and some it applies (it is lenient on those).
RECORDS = [
    b"not json",
    b"{",
    b"[1, 2]",
    b'"text"',
    b"null",
    b"{}",
    *(_without(name) for name in GOOD),
    _with(event_id=""),
    _with(event_id=None),
    _with(session_id=""),
    _with(type=""),
    _with(user_id=7),
    _with(user_id=None),
    _with(timestamp="yesterday"),
    _with(timestamp=1767225600),
    _with(timestamp=None),
    _with(event_id="e2", type="no_such_type"),  # decodable: the worker applies (ignores) it
    _with(event_id=3),
    _with(event_id="e4", timestamp="2026-01-01T09:00:00"),
    orjson.dumps(GOOD),
]


@pytest.fixture
def log(tmp_path: Path):
    opened = open_log(f"sqlite:///{tmp_path}/log.db", 1)
    yield opened
    opened.close()


def test_the_records_the_worker_would_not_apply_are_skipped_and_listed(log) -> None:
    log.append([("u1", value) for value in RECORDS])
    records = log.read_all(0)
    counts = {"malformed": 0}
    applied = [record.offset for record, _, _ in decode_records(records, counts)]
    skipped: list[tuple[LogRecord, str]] = []
    events = log_events(log, skipped=skipped, features=None)
    assert sorted(e["event_id"] for e in events if isinstance(e["event_id"], str)) == [
        "e1",
        "e2",
        "e4",
    ]
    assert len(events) == len(applied) and counts["malformed"] == len(skipped)
    assert {r.offset for r, _ in skipped} == {r.offset for r in records} - set(applied)
    assert all(reason.startswith("undecodable: ") for _, reason in skipped)


def test_a_malformed_record_does_not_stop_a_windowed_read(log) -> None:
    from datetime import UTC, datetime

    log.append([("u1", b"not json"), ("u1", _without("event_id")), ("u1", orjson.dumps(GOOD))])
    since = datetime(2026, 1, 1, 9, tzinfo=UTC)
    assert [e["event_id"] for e in log_events(log, since=since, features=None)] == ["e1"]
    assert log_events(log, until=since, features=None) == []
