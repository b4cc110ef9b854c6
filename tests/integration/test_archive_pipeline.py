"""The archive in the running runtime: ingest -> log -> archive worker -> PostgreSQL.

Real PostgreSQL (127.0.0.1:5432, database ``test``), each test in a schema of its own;
the log and the store are SQLite files in the test's directory.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tailorbot.archive import open_archive
from tailorbot.archive.postgres import PostgresArchive
from tailorbot.archive.writer import ArchiveWriter
from tailorbot.config import Settings
from tailorbot.errors import Unavailable
from tailorbot.runtime import Runtime
from tailorbot.stream.archiver import ArchiveWorker, archive_group
from tailorbot.stream.loop import Item
from tailorbot.stream.thread import WorkerThread
from tests.api.support import message, wait_until
from tests.helpers import POSTGRES_URL as SERVER
from tests.helpers import closed_port
from tests.integration.cluster import TAILORBOT, Process, tailorbot_env

pytestmark = pytest.mark.integration

PII = {
    "jo.smith@example.com": "<EMAIL>",
    "+44 20 7946 0958": "<PHONE>",
    "4111 1111 1111 1111": "<CARD>",
    "10.20.30.40": "<IP>",
}


@pytest.fixture
def settings(tmp_path: Path, schema: str) -> Settings:
    return Settings.load(
        data_dir=tmp_path,
        archive_url=f"{SERVER}?schema={schema}",
        run_worker_in_server=False,
        worker_batch=4,  # several batches per test
    )


@pytest.fixture
def runtime(settings: Settings) -> Iterator[Runtime]:
    built = Runtime(settings)
    yield built
    built.stop()


def archived_ids(runtime: Runtime, user_id: str | None = None) -> list[str]:
    archive = runtime.archive
    assert archive is not None
    rows = archive.events_for_user(user_id) if user_id else archive.iter_events()
    return [row["event_id"] for row in rows]


def ingest(runtime: Runtime, events: list[dict[str, Any]]) -> list[str]:
    return [status["event_id"] for status in runtime.ingestion.ingest(events).results]


def conversation(user_id: str, n: int) -> list[dict[str, Any]]:
    return [message(user_id, f"question {i}") for i in range(n)]


def archive_lag(runtime: Runtime) -> int:
    return sum(runtime.log.lag(archive_group(runtime.settings)).values())


def new_worker(runtime: Runtime, cls: type[ArchiveWorker] = ArchiveWorker) -> ArchiveWorker:
    assert runtime.archive is not None
    return cls(
        runtime.log,
        runtime.archive,
        runtime.stores.features,
        runtime.settings,
        metrics=runtime.metrics,
    )


def drain(worker: ArchiveWorker) -> ArchiveWorker:
    """Run ``worker`` until it finds nothing new, then leave the group (so that the next
    worker gets every partition at once)."""
    try:
        while worker.run_once():
            pass
    finally:
        worker.close()
    return worker


# --- exactly once ---------------------------------------------------------------------------


def test_runtime_threads_archive_every_event_once_across_a_restart(settings: Settings) -> None:
    live = settings.model_copy(update={"run_worker_in_server": True})
    runtime = Runtime(live)
    try:
        runtime.start_workers()
        first = ingest(runtime, conversation("ann", 6) + conversation("bob", 3))
        wait_until(lambda: len(archived_ids(runtime)) == len(first), "the archive worker thread")
        ready = runtime.health.readiness()
        assert ready["ready"] is True
        assert ready["checks"]["archive"] == "ok" and ready["checks"]["archiver"] == "running"
        # More events, then stop at once: some may be written and not yet committed.
        second = ingest(runtime, conversation("ann", 5) + conversation("cid", 4))
    finally:
        runtime.stop()
    assert runtime.health.thread_state("archiver") == "not running in this process"

    restarted = Runtime(live)
    try:
        restarted.start_workers()
        wait_until(lambda: archive_lag(restarted) == 0, "the restarted archive worker")
        ids = archived_ids(restarted)
        assert sorted(ids) == sorted(first + second)  # none lost, none twice
        assert restarted.health.readiness()["checks"]["archive_lag"] == 0
    finally:
        restarted.stop()


class CrashBeforeCommit(ArchiveWorker):
    """Fails the first commit, after the batch was written: a crash between write and commit."""

    crashed_batch = 0  # records in the batch that crashed

    def _commit(self, consumer: Any, records: Any) -> None:
        if not self.crashed_batch:
            self.crashed_batch = len(records)
            raise RuntimeError("injected crash between write and commit")
        super()._commit(consumer, records)


def test_a_crash_between_write_and_commit_redelivers_without_duplicates(runtime: Runtime) -> None:
    ids = ingest(runtime, conversation("ann", 3))
    crashing = new_worker(runtime, CrashBeforeCommit)
    with pytest.raises(RuntimeError, match="injected crash"):
        crashing.run_once()
    assert sorted(archived_ids(runtime)) == sorted(ids), "written before the crash"
    assert archive_lag(runtime) == 3, "nothing committed"
    crashing.close()

    restarted = new_worker(runtime)
    assert restarted.run_once() == 3, "the batch comes again"
    assert restarted.counts == {"archived": 0, "duplicate": 3, "erased": 0, "malformed": 0}
    assert sorted(archived_ids(runtime)) == sorted(ids) and archive_lag(runtime) == 0
    restarted.close()


def test_the_run_loop_retries_a_crashed_batch_from_the_last_commit(runtime: Runtime) -> None:
    ids = ingest(runtime, conversation("ann", 7) + conversation("bob", 2))
    worker = new_worker(runtime, CrashBeforeCommit)
    thread = WorkerThread(worker, "test-archiver")
    thread.start()
    try:
        wait_until(lambda: archive_lag(runtime) == 0, "the archive worker to retry and finish")
    finally:
        thread.stop()
    assert thread.state() == "stopped" and worker.errors == 1
    assert sorted(archived_ids(runtime)) == sorted(ids)
    # The crashed batch was written twice: the second time every row was there already.
    assert worker.crashed_batch > 0 and worker.counts["duplicate"] == worker.crashed_batch
    assert worker.counts["archived"] == len(ids) - worker.crashed_batch


def test_malformed_log_records_are_skipped_not_retried(runtime: Runtime) -> None:
    ids = ingest(runtime, conversation("ann", 2))
    runtime.log.append([("ann", b"not json"), ("ann", b'{"user_id": "ann"}')])
    worker = new_worker(runtime)
    drain(worker)
    assert worker.counts["malformed"] == 2 and archive_lag(runtime) == 0
    assert sorted(archived_ids(runtime)) == sorted(ids)


# --- privacy --------------------------------------------------------------------------------


def test_archived_rows_hold_no_raw_pii(runtime: Runtime, schema: str) -> None:
    texts = [f"reach me at {raw} please" for raw in PII]
    ingest(runtime, [message("ann", text) for text in texts])
    drain(new_worker(runtime))
    with psycopg.connect(SERVER, autocommit=True) as conn:
        dump = "\n".join(
            row[0] for row in conn.execute(f'SELECT t::text FROM "{schema}".events t').fetchall()
        )
    assert len(archived_ids(runtime)) == len(texts)
    for raw, placeholder in PII.items():
        assert raw not in dump
        assert placeholder in dump


class EraseMidBatch(ArchiveWorker):
    """Erases ``victim`` through the runtime while a polled batch is in flight: before the
    erasure watermarks are read (``point="decode"``) or between that read and the write
    (``point="write"``)."""

    runtime: Runtime
    victim = "ann"
    point = "decode"
    done = False

    def _erase_once(self) -> None:
        if not self.done:
            self.done = True
            self.runtime.users.erase_user(self.victim)

    def _archive(self, items: Sequence[Item], counts: dict[str, int]) -> None:
        if self.point == "decode":
            self._erase_once()
        super()._archive(items, counts)

    def _write_events(self, items: Sequence[Item]) -> int:
        if self.point == "write":
            self._erase_once()
        return super()._write_events(items)


@pytest.mark.parametrize("point", ["decode", "write"])
def test_erasure_removes_archived_rows_and_an_in_flight_batch_does_not_restore_them(
    runtime: Runtime, point: str
) -> None:
    ingest(runtime, conversation("ann", 2) + conversation("bob", 1))
    drain(new_worker(runtime))
    assert len(archived_ids(runtime, "ann")) == 2
    assert runtime.archive_writer is not None
    decision = {"decision_id": "d-ann", "user_id": "ann", "variant": "v1"}
    runtime.archive_writer.put("decision", decision)

    # A batch with ann's newer events is polled; ann is erased while it is in flight.
    bob_ids = archived_ids(runtime, "bob")
    ingest(runtime, conversation("ann", 2))
    worker = new_worker(runtime, EraseMidBatch)
    worker.runtime, worker.point = runtime, point
    drain(worker)
    assert worker.done and archive_lag(runtime) == 0
    assert archived_ids(runtime, "ann") == []
    assert sorted(archived_ids(runtime, "bob")) == sorted(bob_ids)
    if point == "decode":
        assert worker.counts["erased"] == 2

    # ann comes back after the erasure: her new events are archived again.
    comeback = ingest(runtime, [message("ann", "new start")])
    drain(new_worker(runtime))
    assert archived_ids(runtime, "ann") == comeback
    runtime.stop()
    reader = open_archive(runtime.settings.archive_url or "")
    try:
        assert [d["decision_id"] for d in reader.iter_decisions()] == []
    finally:
        reader.close()


# --- decisions and feedback -----------------------------------------------------------------


def test_decisions_and_feedback_reach_the_archive_by_stop(runtime: Runtime) -> None:
    writer = runtime.archive_writer
    assert writer is not None
    for i in range(20):
        writer.put(
            "decision",
            {"decision_id": f"d{i}", "user_id": f"u{i % 3}", "intent": "card_arrival",
             "variant": "concise", "created_at": "2026-01-01T10:00:00Z"},
        )  # fmt: skip
    writer.put("feedback", {"decision_id": "d4", "user_id": "u1", "reward": 1.0})
    runtime.users.erase_user("u2")  # its queued decisions are written first, then deleted
    runtime.stop()

    reader = open_archive(runtime.settings.archive_url or "")
    try:
        decisions = {d["decision_id"]: d for d in reader.iter_decisions()}
    finally:
        reader.close()
    assert sorted(decisions, key=lambda d: int(d[1:])) == [f"d{i}" for i in range(20) if i % 3 != 2]
    assert decisions["d4"]["feedback"]["reward"] == 1.0 and decisions["d0"]["feedback"] is None
    assert decisions["d3"]["variant"] == "concise"


def test_a_full_writer_queue_writes_in_the_caller_instead_of_dropping(schema: str) -> None:
    archive = open_archive(f"{SERVER}?schema={schema}")
    writer = ArchiveWriter(archive, max_pending=1, batch=1)

    def decide(caller: int) -> None:
        for i in range(15):
            writer.put("decision", {"decision_id": f"d{caller}-{i}", "user_id": "u"})

    callers = [threading.Thread(target=decide, args=(k,)) for k in range(4)]
    for caller in callers:
        caller.start()
    for caller in callers:
        caller.join()
    writer.close()
    assert writer.written == 60 and writer.lost == 0
    assert len(list(archive.iter_decisions())) == 60
    with pytest.raises(RuntimeError, match="closed"):
        writer.put("decision", {"decision_id": "late", "user_id": "u"})
    with pytest.raises(ValueError, match="kind"):
        ArchiveWriter(archive).put("verdict", {})
    archive.close()


def test_without_an_archive_the_runtime_archives_nothing(tmp_path: Path) -> None:
    runtime = Runtime(Settings.load(data_dir=tmp_path, run_worker_in_server=True))
    assert runtime.archive_writer is None
    runtime.start_workers()
    checks = runtime.health.readiness()["checks"]
    runtime.stop()
    assert runtime.archive is None
    assert "archive" not in checks and "archiver" not in checks and "archive_lag" not in checks


# --- outages --------------------------------------------------------------------------------


def test_an_unreachable_archive_is_reported_and_erasure_answers_503(runtime: Runtime) -> None:
    archive = runtime.archive
    assert isinstance(archive, PostgresArchive)
    archive.dsn = f"postgresql://postgres@127.0.0.1:{closed_port()}/test"
    archive.close()  # the next call connects to the dead address
    report = runtime.health.readiness()
    assert report["checks"]["archive"].startswith("unreachable")
    assert report["ready"] is True, "serving does not depend on the archive"
    with pytest.raises(Unavailable, match="archive unavailable") as caught:
        runtime.users.erase_user("ann")
    assert caught.value.http_status == 503

    with pytest.raises(Unavailable, match="archive unavailable"):
        Runtime(runtime.settings.model_copy(update={"archive_url": archive.dsn}))


def test_the_worker_command_also_archives(settings: Settings, tmp_path: Path) -> None:
    runtime = Runtime(settings)
    ids = ingest(runtime, conversation("ann", 3))
    env = tailorbot_env(data_dir=tmp_path, archive_url=settings.archive_url)
    worker = Process([TAILORBOT, "worker"], env, tmp_path / "worker.out")

    def archived() -> bool:
        assert worker.alive(), worker.tail()
        return sorted(archived_ids(runtime)) == sorted(ids)

    try:
        wait_until(archived, "the standalone worker to archive")
        assert worker.stop() == 0, worker.tail()
    finally:
        worker.stop()
        runtime.stop()
    output = worker.tail()
    assert "archiving in group" in output and "worker stopped" in output, output
    assert "Traceback" not in output
