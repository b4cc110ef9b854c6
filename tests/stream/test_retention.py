"""Retention trims the log by age and size, never past what a consumer group still has to
read, and deletes old decisions; the stream worker runs it."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from tailorbot.config import Settings
from tailorbot.runtime import Runtime
from tailorbot.stream.retention import Retention
from tests.stream.eventgen import make_event


def _append(runtime: Runtime, n: int, ingested_at: float) -> None:
    events = [
        make_event("session_started", ingested_at, event_id=f"e{ingested_at}-{i}", user_id="u1")
        for i in range(n)
    ]
    runtime.log.append([("u1", orjson.dumps({**e, "ingested_at": ingested_at})) for e in events])


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[Runtime]:
    built = Runtime(
        Settings(data_dir=tmp_path, partitions=1, run_worker_in_server=False, log_retention_s=3600)
    )
    yield built
    built.stop()


def _retention(runtime: Runtime, **settings: float) -> Retention:
    changed = runtime.settings.model_copy(update=settings)
    return Retention(runtime.log, runtime.stores.decisions, changed, ["g1", "g2"])


def test_old_records_go_once_every_group_read_them(runtime: Runtime) -> None:
    now = time.time()
    _append(runtime, 6, now - 7200)  # older than the hour
    _append(runtime, 4, now - 60)
    first, second = runtime.log.consumer("g1"), runtime.log.consumer("g2")
    first.commit({0: 10})
    second.commit({0: 3})  # g2 has read only 3
    retention = _retention(runtime, log_retention_s=3600)
    assert retention.run(now)["log_records"] == 3  # not past what g2 still needs
    second.commit({0: 10})
    assert retention.run(now)["log_records"] == 3
    first.close()
    second.close()
    assert [r.offset for r in runtime.log.read_all(0)] == [6, 7, 8, 9]


def test_size_keeps_the_newest_records(runtime: Runtime) -> None:
    _append(runtime, 10, time.time())
    for group in ("g1", "g2"):
        consumer = runtime.log.consumer(group)
        consumer.commit({0: 10})
        consumer.close()
    retention = _retention(runtime, log_retention_s=None, log_retention_records=4)
    assert retention.run(time.time()) == {"log_records": 6, "decisions": 0}
    assert [r.offset for r in runtime.log.read_all(0)] == [6, 7, 8, 9]


def test_old_decisions_are_deleted(runtime: Runtime) -> None:
    decisions = runtime.stores.decisions
    decisions.put("d-old", "u1", {"variant": "short"})
    time.sleep(0.05)
    cutoff = time.time()
    decisions.put("d-new", "u1", {"variant": "short"})
    assert decisions.purge(cutoff) == 1
    assert decisions.get("d-old") is None and decisions.get("d-new") is not None


def test_the_stream_worker_runs_retention(runtime: Runtime) -> None:
    now = time.time()
    _append(runtime, 5, now - 7200)
    _append(runtime, 2, now)
    worker = runtime.stream_worker()
    assert worker.retention is not None
    while worker.run_once():
        pass
    worker.close()
    assert [r.offset for r in runtime.log.read_all(0)] == [5, 6]
    assert runtime.stores.features.get("u1") is not None  # applied before it was trimmed
