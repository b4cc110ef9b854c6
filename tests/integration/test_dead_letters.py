"""Poison events: a record the archive refuses for good (a U+0000 in a text: PostgreSQL's
jsonb refuses it) goes to the dead letters with the reason and a metric; the rest of the
partition is archived and committed; ``tailorbot dlq list|replay|drop`` handle it."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from tailorbot.cli import app
from tailorbot.config import Settings
from tailorbot.runtime import Runtime
from tailorbot.stream.archiver import archive_group
from tests.api.support import message
from tests.helpers import POSTGRES_URL as SERVER

pytestmark = pytest.mark.integration

runner = CliRunner()


@pytest.fixture
def settings(tmp_path: Path, schema: str) -> Settings:
    return Settings.load(
        data_dir=tmp_path,
        archive_url=f"{SERVER}?schema={schema}",
        run_worker_in_server=False,
        partitions=1,  # one partition: the poison sits between good records
        worker_batch=10,
    )


@pytest.fixture
def runtime(settings: Settings) -> Iterator[Runtime]:
    built = Runtime(settings)
    yield built
    built.stop()


def log_raw(runtime: Runtime, events: list[dict]) -> None:
    """Append as the log held them before the door normalized U+0000."""
    runtime.log.append(
        [(e["user_id"], orjson.dumps({**e, "ingested_at": time.time()})) for e in events]
    )


def archive_all(runtime: Runtime) -> None:
    worker = runtime.archive_worker()
    assert worker is not None
    try:
        for _ in range(20):
            if not worker.run_once() and not sum(runtime.log.lag(worker.group).values()):
                return
        raise AssertionError("the archive worker did not catch up")
    finally:
        worker.close()


def archived(runtime: Runtime) -> list[str]:
    assert runtime.archive is not None
    return sorted(row["event_id"] for row in runtime.archive.iter_events())


def cli(settings: Settings, *args: str):
    env = settings.to_env()
    return runner.invoke(app, ["dlq", *args], env=env)


def test_a_refused_record_goes_to_the_dead_letters_and_the_partition_moves_on(
    runtime: Runtime, settings: Settings
) -> None:
    events = [message("u1", f"good {i}", event_id=f"good-{i}") for i in range(5)]
    events.insert(2, message("u1", "bad\u0000text", event_id="poison-1"))
    log_raw(runtime, events)
    archive_all(runtime)
    assert archived(runtime) == [f"good-{i}" for i in range(5)]
    assert sum(runtime.log.lag(archive_group(settings)).values()) == 0
    (letter,) = runtime.dead_letters.list()
    assert letter.group == archive_group(settings) and letter.offset == 2
    assert orjson.loads(letter.value)["event_id"] == "poison-1"
    assert "refused" in letter.reason and "\\u0000" in letter.reason
    shown = runtime.metrics.render().decode()
    assert f'tailorbot_dead_letters_total{{group="{archive_group(settings)}"}} 1.0' in shown

    listed = cli(settings, "list", "--json")
    assert listed.exit_code == 0, listed.output
    (row,) = json.loads(listed.output)
    assert row["letter_id"] == letter.letter_id and row["event_id"] == "poison-1"

    replayed = cli(settings, "replay", letter.letter_id)
    assert replayed.exit_code == 0, replayed.output
    assert runtime.dead_letters.count() == 0
    archive_all(runtime)
    assert "poison-1" in archived(runtime)  # normalized on replay: U+0000 removed
    assert runtime.archive is not None
    (row,) = [r for r in runtime.archive.iter_events() if r["event_id"] == "poison-1"]
    assert row["text"] == "badtext"


def test_drop_deletes_and_unknown_ids_are_one_clear_error(
    runtime: Runtime, settings: Settings
) -> None:
    log_raw(runtime, [message("u2", "x\u0000", event_id="poison-2")])
    archive_all(runtime)
    assert runtime.dead_letters.count() == 1
    missing = cli(settings, "drop", "nope:0:0")
    assert missing.exit_code != 0 and "no dead letter 'nope:0:0'" in missing.output
    dropped = cli(settings, "drop", "--all")
    assert dropped.exit_code == 0, dropped.output
    assert runtime.dead_letters.count() == 0
    assert cli(settings, "list").output.strip() == "no dead letters"


def drain_stream(runtime: Runtime, settings: Settings) -> None:
    worker = runtime.stream_worker()
    try:
        for _ in range(20):
            if not worker.run_once() and not sum(runtime.log.lag(settings.consumer_group).values()):
                return
        raise AssertionError("the stream worker did not catch up")
    finally:
        worker.close()


def test_an_event_the_feature_state_refuses_does_not_stall_the_stream_worker(
    runtime: Runtime, settings: Settings
) -> None:
    """The reviewer's record: a rating without a score decodes, but applying it raises
    (it was retried every 5 s forever, and nothing behind it moved)."""
    now = message("u1")["timestamp"]
    bad = {"event_id": "x1", "user_id": "bad1", "session_id": "s", "type": "rating"}
    log_raw(
        runtime,
        [
            message("u1", event_id="before"),
            {**bad, "timestamp": now},
            message("u2", event_id="after"),
            message("bad1", event_id="bad1-after"),
        ],
    )
    drain_stream(runtime, settings)
    assert sum(runtime.log.lag(settings.consumer_group).values()) == 0
    for user in ("u1", "u2", "bad1"):  # bad1's other events count
        assert runtime.stores.features.get(user) is not None, user
    listed = cli(settings, "list", "--json")
    assert listed.exit_code == 0, listed.output
    (row,) = json.loads(listed.output)
    assert row["event_id"] == "x1" and row["letter_id"] == f"{settings.consumer_group}:0:1"
    (letter,) = runtime.dead_letters.list()
    assert "KeyError('score')" in letter.reason


def test_an_archive_letter_of_a_user_erased_during_the_batch_is_not_kept(
    runtime: Runtime, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DELETE /v1/users/victim after the archive worker polled the victim's poison record
    and before its commit: the letter is not put (the erasure deleted the ones it found)."""
    log_raw(
        runtime,
        [
            message("victim", "mine\u0000", event_id="poison-v"),
            message("bystander", "theirs\u0000", event_id="poison-b"),
        ],
    )
    worker = runtime.archive_worker()
    assert worker is not None
    real_archive = worker._archive

    def archive_then_erase(*args: object) -> None:
        real_archive(*args)
        runtime.users.erase_user("victim")

    monkeypatch.setattr(worker, "_archive", archive_then_erase)
    try:
        assert worker.run_once() == 2
    finally:
        worker.close()
    assert [letter.key for letter in runtime.dead_letters.list()] == ["bystander"]
    assert sum(runtime.log.lag(archive_group(settings)).values()) == 0
