"""``tailorbot dlq replay|drop``: a replayed letter goes through the door of
``POST /v1/events`` (redaction, the KB's article ids, the time window), a refused one stays a
dead letter, and no letter is ever counted twice."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from typer.testing import CliRunner

from tailorbot.cli import app
from tailorbot.config import Settings
from tailorbot.dlq.base import DeadLetter
from tailorbot.log.base import LogRecord
from tailorbot.runtime import Runtime
from tests.api.support import event, message
from tests.cli.support import one_error_line

runner = CliRunner()
GROUP = "tailorbot-features"


def _run(*args: object) -> Any:
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[Runtime]:
    built = Runtime(Settings.load(data_dir=tmp_path, run_worker_in_server=False))
    yield built
    built.stop()


def _letter(runtime: Runtime, offset: int, body: dict[str, Any] | bytes) -> DeadLetter:
    """A dead letter as a worker keeps it: the record's key and bytes, and why."""
    value = body if isinstance(body, bytes) else orjson.dumps({**body, "ingested_at": 1.0})
    letter = DeadLetter(GROUP, 0, offset, "u1", value, "undecodable: test", time.time())
    runtime.dead_letters.put([letter])
    return letter


def _logged(runtime: Runtime) -> list[LogRecord]:
    log = runtime.log
    return [record for p in range(log.num_partitions) for record in log.read_all(p)]


def _replay(runtime: Runtime, *args: str) -> Any:
    return _run("dlq", "replay", *args, "--data-dir", runtime.settings.data_dir)


def test_replay_redacts_and_appends_through_the_door(runtime: Runtime) -> None:
    text = "mail jane.doe@example.com, card 4111 1111 1111 1111"
    letter = _letter(runtime, 3, message("u1", text, event_id="poison-1"))
    result = _replay(runtime, letter.letter_id)
    assert result.exit_code == 0, result.output
    assert "replayed 1 dead letter(s)" in result.stdout
    (record,) = _logged(runtime)
    stored = orjson.loads(record.value)
    assert stored["event_id"] == "poison-1" and record.key == "u1"
    assert stored["text"] == "mail <EMAIL>, card <CARD>"
    assert b"jane.doe" not in record.value and b"4111" not in record.value
    assert runtime.dead_letters.count() == 0


def test_a_letter_the_door_refuses_stays_a_dead_letter(runtime: Runtime) -> None:
    unknown = _letter(runtime, 1, event("article_viewed", "u1", article_id="kb-nope"))
    old = _letter(runtime, 2, message("u1", "hi", timestamp="2020-01-01T00:00:00Z"))
    garbage = _letter(runtime, 3, b"not json")
    good = _letter(runtime, 4, event("article_viewed", "u1", article_id="kb-age-limit"))
    result = _replay(runtime, "--all")
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.output
    assert "replayed 1 dead letter(s), 3 refused and kept" in result.stdout
    errors = result.stderr.strip().splitlines()
    assert len(errors) == 3 and all(line.startswith("error: dead letter ") for line in errors)
    by_letter = {letter.letter_id: line for letter in (unknown, old, garbage)
                 for line in errors if repr(letter.letter_id) in line}  # fmt: skip
    assert "article_id: unknown article 'kb-nope'" in by_letter[unknown.letter_id]
    assert "timestamp: " in by_letter[old.letter_id]
    assert "not JSON" in by_letter[garbage.letter_id]
    (record,) = _logged(runtime)
    assert orjson.loads(record.value)["article_id"] == "kb-age-limit"
    kept = {letter.letter_id for letter in runtime.dead_letters.list()}
    assert kept == {unknown.letter_id, old.letter_id, garbage.letter_id}
    assert good.letter_id not in kept


def test_an_id_less_letter_is_counted_once_however_often_it_is_replayed(
    runtime: Runtime,
) -> None:
    body = message("u1", "my card never came")
    letter = _letter(runtime, 7, body)
    twice = _replay(runtime, letter.letter_id, letter.letter_id)
    assert twice.exit_code == 0, twice.output
    assert "replayed 1 dead letter(s)" in twice.stdout
    assert len(_logged(runtime)) == 1
    # a crash between the append and the deletion: the letter is still there, replayed again
    runtime.dead_letters.put([letter])
    again = _replay(runtime, letter.letter_id)
    assert again.exit_code == 0, again.output
    ids = [orjson.loads(record.value)["event_id"] for record in _logged(runtime)]
    assert len(ids) == 2 and ids[0] == ids[1]
    worker = runtime.stream_worker()
    try:
        while worker.run_once():
            pass
    finally:
        worker.close()
    assert worker.counts["applied"] == 1 and worker.counts["duplicate"] == 1


@pytest.mark.parametrize("command", ["replay", "drop"])
def test_no_letter_named_is_a_usage_error(tmp_path: Path, command: str) -> None:
    result = _run("dlq", command, "--data-dir", tmp_path / "missing")
    assert result.exit_code == 2 and isinstance(result.exception, SystemExit), result.output
    one_error_line(result.stderr, "--all", f"tailorbot dlq {command} --help")
