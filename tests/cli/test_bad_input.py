"""Bad input on the command line: one ``error:`` line naming what is wrong, a non-zero exit,
no traceback, and nothing half-stored."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from tailorbot.cli import app
from tailorbot.config import Settings
from tailorbot.models import registry
from tailorbot.models.pipeline.source import log_events
from tailorbot.runtime import Runtime
from tests.cli.support import one_error_line

runner = CliRunner()


def _run(*args: object) -> Any:
    return runner.invoke(app, [str(a) for a in args])


def _one_line_error(result: Any, *needles: str) -> str:
    """The command failed with exactly one ``error:`` line holding every needle."""
    assert result.exit_code != 0, result.output
    # an unhandled exception is kept in result.exception (a traceback outside the runner)
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    return one_error_line(result.stderr, *needles)


def _logged_events(data_dir: Path) -> list[dict[str, Any]]:
    runtime = Runtime(Settings.load(data_dir=data_dir, run_worker_in_server=False))
    try:
        return log_events(runtime.log, None, None, features=runtime.stores.features)
    finally:
        runtime.stop()


# --- F1: a model version that cannot be loaded ---------------------------------------------


@pytest.fixture
def corrupt_current(tmp_path: Path) -> tuple[Path, str]:
    Runtime(Settings.load(data_dir=tmp_path, run_worker_in_server=False)).stop()  # a system
    saved = registry.save(tmp_path, {"weights": [1]}, {"metrics": {}})
    (saved.path / registry.MODEL_FILE).write_text("garbage\n")
    return tmp_path, saved.version


def test_an_unloadable_current_model_is_one_line(corrupt_current: tuple[Path, str]) -> None:
    data_dir, version = corrupt_current
    _one_line_error(_run("label", "export", "--data-dir", data_dir), version)
    _one_line_error(_run("audit", "--model", "current", "--data-dir", data_dir), version)


def test_promoting_a_version_with_broken_metadata_is_one_line(tmp_path: Path) -> None:
    first = registry.save(tmp_path, {"weights": [1]}, {"metrics": {}})
    registry.set_current(tmp_path, first.version, action="promote", reason="test")
    broken = registry.save(tmp_path, {"weights": [2]}, {"metrics": {}})
    (broken.path / registry.METADATA_FILE).write_text("{bad")
    result = _run("models", "promote", broken.version, "--data-dir", tmp_path)
    _one_line_error(result, broken.version)


# --- F3, F11, F12: label import -----------------------------------------------------------

LABEL_COLUMNS = ["user_id", "session_id", "intent", "message_event_id"]


def _label_rows(n: int) -> list[dict[str, str]]:
    return [
        {
            "user_id": f"u{i}",
            "session_id": f"s{i}",
            "intent": "card_arrival",
            "message_event_id": f"m{i}",
        }  # fmt: skip
        for i in range(n)
    ]


def _write_csv(path: Path, rows: list[dict[str, str]], encoding: str = "utf-8") -> Path:
    with path.open("w", newline="", encoding=encoding) as handle:
        writer = csv.DictWriter(handle, fieldnames=LABEL_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    return path


def test_label_import_checks_every_row_before_storing_any(tmp_path: Path) -> None:
    rows = _label_rows(600)
    rows[550]["message_event_id"] = "bad id with spaces!"
    path = _write_csv(tmp_path / "labels.csv", rows)
    result = _run("label", "import", path, "--data-dir", tmp_path)
    _one_line_error(result, "labels.csv", "line 552", "message_event_id")
    assert _logged_events(tmp_path) == []


def test_label_import_twice_stores_each_label_once(tmp_path: Path) -> None:
    path = _write_csv(tmp_path / "labels.csv", _label_rows(3))
    for _ in range(2):
        result = _run("label", "import", path, "--data-dir", tmp_path)
        assert result.exit_code == 0, result.output
    ids = [e["event_id"] for e in _logged_events(tmp_path)]
    assert len(ids) == 6 and len(set(ids)) == 3  # the rerun repeats the same events


def test_label_import_reads_a_csv_with_a_byte_order_mark(tmp_path: Path) -> None:
    path = _write_csv(tmp_path / "excel.csv", _label_rows(2), encoding="utf-8-sig")
    result = _run("label", "import", path, "--data-dir", tmp_path)
    assert result.exit_code == 0 and "imported 2 labels" in result.output, result.output


def test_label_import_of_a_non_utf8_file_names_it(tmp_path: Path) -> None:
    path = tmp_path / "latin.csv"
    path.write_bytes(b"user_id,session_id,intent,message_event_id\nu1,s1,caf\xe9,m1\n")
    _one_line_error(_run("label", "import", path, "--data-dir", tmp_path), "latin.csv")


# --- F11, F12: train --data ---------------------------------------------------------------


def test_train_reads_a_csv_with_a_byte_order_mark(tmp_path: Path) -> None:
    from tailorbot.cli.train import training_rows

    path = tmp_path / "excel.csv"
    path.write_text("text,intent\nwhere is my card,card_arrival\n", encoding="utf-8-sig")
    rows, _, _ = training_rows(path)
    assert rows == [{"text": "where is my card", "intent": "card_arrival"}]


def test_train_on_a_non_utf8_jsonl_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "latin.jsonl"
    path.write_bytes(b'{"text": "caf\xe9", "intent": "greet"}\n')
    _one_line_error(_run("train", "--data", path, "--data-dir", tmp_path), "latin.jsonl")


def test_train_seed_out_of_range_names_the_option(tmp_path: Path) -> None:
    result = _run("train", "--seed", "-5", "--data-dir", tmp_path)
    assert result.exit_code == 2 and "--seed" in result.output, result.output


def test_a_malformed_config_file_is_named(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text("log_url = \n")
    _one_line_error(_run("label", "export", "-c", config, "--data-dir", tmp_path), "bad.toml")


def test_a_setting_out_of_bounds_names_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TAILORBOT_DASHBOARD_STEP_S", "0")  # the page would poll without pause
    result = _run("label", "export", "--data-dir", tmp_path)
    _one_line_error(result, "invalid settings", "dashboard_step_s", "greater than 0")


# --- F10: retrain that fails --------------------------------------------------------------


def test_a_failed_retrain_exits_non_zero(tmp_path: Path) -> None:
    result = _run("retrain", "--force", "--no-search", "--data-dir", tmp_path)
    _one_line_error(result, "training failed")


# --- F5: rasa consume with a bad librdkafka property --------------------------------------


def test_rasa_consume_with_an_unknown_kafka_property_is_one_line(tmp_path: Path) -> None:
    result = _run("rasa", "consume", "--bootstrap", "nowhere:9", "-X", "bogus.prop=1",
                  "--max-idle-s", "1", "--data-dir", tmp_path)  # fmt: skip
    _one_line_error(result, "bogus.prop")


def test_rasa_backfill_with_a_cooperative_protocol_is_one_line(tmp_path: Path) -> None:
    result = _run("rasa", "consume", "--bootstrap", "nowhere:9", "--until-end",
                  "-X", "partition.assignment.strategy=cooperative-sticky",
                  "--data-dir", tmp_path)  # fmt: skip
    _one_line_error(result, "--kafka-option partition.assignment.strategy", "eager")


def test_a_worker_with_an_empty_member_id_is_one_line(tmp_path: Path) -> None:
    _one_line_error(_run("worker", "--member-id", " ", "--data-dir", tmp_path), "--member-id")


# --- F13: replay stopped mid-file ---------------------------------------------------------


def test_replay_stopped_by_the_server_says_where_to_resume(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tailorbot.cli import data
    from tailorbot.cli.common import CliError

    sent: list[int] = []

    def post(client: object, url: str, events: list[Any]) -> dict[str, Any]:
        sent.append(len(events))
        if len(sent) > 1:
            raise CliError("HTTP 413: payload too large (try a smaller --batch)")
        return {"accepted": len(events), "results": [{"status": "accepted"}] * len(events)}

    monkeypatch.setattr(data, "_post", post)
    path = tmp_path / "events.jsonl"
    path.write_text("".join(f'{{"n": {i}}}\n' for i in range(5)))
    result = _run("replay", path, "--batch", "2", "--url", "http://127.0.0.1:1")
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, result.stderr  # (the progress bar's label is the other line)
    for needle in ("HTTP 413", "2 events accepted", "resume from line 3"):
        assert needle in errors[0], (needle, errors[0])


def test_an_error_listing_problems_shows_the_first(capsys: pytest.CaptureFixture[str]) -> None:
    import typer

    from tailorbot.cli.common import reports_errors
    from tailorbot.errors import InvalidInput, Problem

    @reports_errors
    def command() -> None:
        problems = [Problem(1, "message_event_id", "bad id"), Problem(3, "intent", "empty")]
        raise InvalidInput("invalid events: 2 of 4 event(s) rejected", problems=problems)

    with pytest.raises(typer.Exit):
        command()
    assert "(event 1: message_event_id: bad id (+1 more))" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (("replay", "/nonexistent.jsonl"), ("'file'", "does not exist", "tailorbot replay --help")),
        (("train", "--folds", "1"), ("'--folds'", "greater than or equal to 2")),
        (("train", "--bogus"), ("No such option: --bogus",)),
        (("nosuch",), ("No such command 'nosuch'",)),
    ],
)
def test_a_usage_error_is_one_line(args: tuple[str, ...], needles: tuple[str, ...]) -> None:
    result = _run(*args)
    assert result.exit_code == 2
    _one_line_error(result, *needles)


def test_replay_suggests_a_smaller_batch_only_for_a_body_over_the_limit() -> None:
    import httpx

    from tailorbot.cli.data import _hint

    too_big = httpx.Response(413, json={"error": "payload_too_large", "message": "body"})
    one_event = httpx.Response(
        413, json={"error": "payload_too_large", "problems": [{"field": "text", "reason": "x"}]}
    )
    assert _hint(too_big) == " (try a smaller --batch)"
    assert _hint(one_event) == ""  # a smaller batch cannot help a text that is too long
    assert _hint(httpx.Response(422, json={})) == ""


@pytest.mark.parametrize("command", [("dlq", "list"), ("dlq", "drop", "--all"), ("audit",)])
def test_a_reading_command_does_not_create_a_mistyped_data_dir(
    tmp_path: Path, command: tuple[str, ...]
) -> None:
    missing = tmp_path / "typo" / "data"
    _one_line_error(_run(*command, "--data-dir", missing), "no data directory", "typo")
    assert not (tmp_path / "typo").exists()


def test_label_import_refuses_an_intent_nobody_knows(tmp_path: Path) -> None:
    from tests.services.decisions.conftest import save_model

    save_model(tmp_path)  # a current intent model: its labels, the KB's and the built-in ones
    rows = _label_rows(3)
    rows[1]["intent"] = "card_arival"  # a typo would train a class of its own
    path = _write_csv(tmp_path / "labels.csv", rows)
    refused = _run("label", "import", path, "--data-dir", tmp_path)
    _one_line_error(refused, "line 3", "'card_arival'", "--allow-new-intents")
    assert _logged_events(tmp_path) == []
    rows[1]["intent"] = "greeting"  # built in
    assert _run("label", "import", _write_csv(path, rows), "--data-dir", tmp_path).exit_code == 0
    rows[2]["intent"] = "card_arival"
    meant = _run("label", "import", _write_csv(path, rows), "--allow-new-intents",
                 "--data-dir", tmp_path)  # fmt: skip
    assert meant.exit_code == 0, meant.output
    assert "card_arival" in {e.get("intent") for e in _logged_events(tmp_path)}
