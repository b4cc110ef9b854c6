"""The commands that read the logged history: a dead-lettered record in the log (not an
event) is skipped and counted, not a traceback; a data dir or database file that is not
there is one error naming it, and nothing is created in its place."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from typer.testing import CliRunner

from tailorbot.cli import app
from tailorbot.cli.common import CliError, reading_settings
from tailorbot.config import Settings
from tailorbot.runtime import Runtime
from tests.cli.support import one_error_line
from tests.models.pipeline.support import write_support_log

runner = CliRunner()
NOT_EVENTS = [b"not json", orjson.dumps({"type": "message", "user_id": "u1", "text": "x"})]


def _run(*args: object) -> Any:
    return runner.invoke(app, [str(a) for a in args])


def _refused(result: Any, *needles: str) -> None:
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.output
    one_error_line(result.stderr, *needles)


@pytest.fixture(scope="module")
def poisoned(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A support log with two records the stream worker would not apply among its events."""
    root = tmp_path_factory.mktemp("poisoned")
    write_support_log(root, label_share=0.6)
    runtime = Runtime(Settings.load(data_dir=root, run_worker_in_server=False))
    try:
        runtime.log.append([("u1", value) for value in NOT_EVENTS])
    finally:
        runtime.stop()
    return root


@pytest.mark.parametrize(
    "command",
    [
        ("dataset", "build", "--out", "{dir}/rows.jsonl"),
        ("audit", "--json"),
        ("label", "export", "--out", "{dir}/todo.csv"),
        ("retrain", "--min-labels", "100000", "--no-search"),
    ],
)
def test_records_that_are_not_events_are_skipped(
    poisoned: Path, tmp_path: Path, command: tuple[str, ...]
) -> None:
    args = [part.format(dir=tmp_path) for part in command]
    result = _run(*args, "--data-dir", poisoned)
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    if command[0] != "retrain":  # the history's commands count what they skipped
        assert "note: skipped 2 log record(s)" in result.stderr, result.stderr
    else:
        assert result.stdout.startswith("skipped: "), result.stdout


@pytest.mark.parametrize(
    ("command", "missing"),
    [
        (("dlq", "list"), "store.db"),
        (("dlq", "drop", "--all"), "store.db"),
        (("dlq", "replay", "--all"), "log.db"),
        (("audit",), "log.db"),
        (("label", "export"), "log.db"),
        (("dataset", "build"), "log.db"),
    ],
)
def test_a_reading_command_does_not_create_an_empty_system(
    tmp_path: Path, command: tuple[str, ...], missing: str
) -> None:
    _refused(_run(*command, "--data-dir", tmp_path), str(tmp_path / missing), "see --data-dir")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("command", [("dataset", "build"), ("retrain", "--no-search")])
def test_a_mistyped_data_dir_is_not_created(tmp_path: Path, command: tuple[str, ...]) -> None:
    typo = tmp_path / "typo" / "data"
    _refused(_run(*command, "--data-dir", typo), "no data directory", str(typo))
    assert not (tmp_path / "typo").exists()


def test_network_backends_are_not_files(tmp_path: Path) -> None:
    settings = reading_settings(
        None,
        data_dir=tmp_path,
        log_url="kafka://127.0.0.1:9092",
        store_url="redis://127.0.0.1:6379/0",
    )
    assert settings.store_url == "redis://127.0.0.1:6379/0"
    with pytest.raises(CliError, match="online store"):
        reading_settings(None, data_dir=tmp_path, log_url="redis://127.0.0.1:6379/0")
