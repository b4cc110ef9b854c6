"""The learning loop's commands on a real log: label export/import, dataset build, train,
models list/promote/rollback, audit and retrain."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tailorbot.cli import app
from tailorbot.config import Settings
from tailorbot.events.codec import encode_event
from tailorbot.events.schema import EVENT_ADAPTER
from tailorbot.metrics import Metrics
from tailorbot.models import registry
from tailorbot.runtime import Runtime
from tailorbot.services.decisions.model_swap import RetrainOutcomeReader
from tests.models.pipeline.support import support_log

runner = CliRunner()


def _logged(data_dir: Path, label_share: float) -> dict[str, str]:
    """A data dir whose log holds the bilingual support log; returns message id → intent."""
    events, profiles = support_log(users=60, contacts=5, label_share=label_share, seed=4)
    runtime = Runtime(Settings.load(data_dir=data_dir, run_worker_in_server=False))
    try:
        for user, profile in profiles.items():
            runtime.stores.profiles.put(user, profile)
        runtime.log.append(
            [(e["user_id"], encode_event(EVENT_ADAPTER.validate_python(e))) for e in events]
        )
    finally:
        runtime.stop()
    return {e["event_id"]: e["intent"] for e in events if e["type"] == "message"}


def _run(*args: str) -> object:
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("learning")
    _logged(root, label_share=0.6)
    return root


def test_label_export_then_import_adds_training_rows(tmp_path: Path) -> None:
    truth = _logged(tmp_path, label_share=0.5)
    before = _run("dataset", "build", "--data-dir", tmp_path, "--out", tmp_path / "a.jsonl")
    assert before.exit_code == 0, before.output
    n_before = len((tmp_path / "a.jsonl").read_text().splitlines())
    exported = _run("label", "export", "--data-dir", tmp_path, "--out", tmp_path / "todo.csv",
                    "--limit", "40")  # fmt: skip
    assert exported.exit_code == 0, exported.output
    with (tmp_path / "todo.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 40 and all(not r["intent"] for r in rows)
    confidences = [float(r["logged_confidence"]) for r in rows]
    assert confidences == sorted(confidences)  # no model yet: the least confident first
    for row in rows:
        row["intent"] = truth[row["message_event_id"]]
    with (tmp_path / "done.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    imported = _run("label", "import", tmp_path / "done.csv", "--data-dir", tmp_path)
    assert imported.exit_code == 0 and "imported 40 labels" in imported.output, imported.output
    after = _run("dataset", "build", "--data-dir", tmp_path, "--out", tmp_path / "b.jsonl")
    assert after.exit_code == 0, after.output
    assert len((tmp_path / "b.jsonl").read_text().splitlines()) == n_before + 40


def test_bad_inputs_are_one_line_errors(data_dir: Path, tmp_path: Path) -> None:
    bad_csv = tmp_path / "bad.csv"
    bad_csv.write_text("text,intent\nhello,greet\n")
    for args in (
        ("dataset", "build", "--data-dir", data_dir, "--since", "yesterday"),
        ("dataset", "build", "--data-dir", data_dir, "--from", "s3"),
        ("dataset", "build", "--data-dir", data_dir, "--from", "archive"),
        ("label", "import", bad_csv, "--data-dir", data_dir),
        ("models", "promote", "20260101T000000000000Z", "--data-dir", data_dir),
    ):
        result = _run(*args)
        assert result.exit_code == 1, (args, result.output)
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert "Traceback" not in result.output


def test_train_promote_list_rollback_and_audit(data_dir: Path, tmp_path: Path) -> None:
    built = tmp_path / "rows.jsonl"
    assert _run("dataset", "build", "--data-dir", data_dir, "--out", built).exit_code == 0
    first = _run("learn", "--data", built, "--data-dir", data_dir, "--no-search", "--folds", "3")
    assert first.exit_code == 0, first.output
    assert "3-fold CV" in first.output and "by time" in first.output
    assert "is now current" in first.output
    current = registry.current_version(data_dir)
    again = _run("models", "promote", current, "--data-dir", data_dir)
    assert again.exit_code == 1 and "current version already" in again.stderr
    second = _run("learn", "--data", built, "--data-dir", data_dir, "--no-search", "--folds",
                  "3", "--no-promote")  # fmt: skip
    assert second.exit_code == 0 and "promotion" not in second.output
    listed = json.loads(_run("models", "list", "--data-dir", data_dir, "--json").stdout)
    assert listed["current"] == current and len(listed["versions"]) == 2
    candidate = listed["versions"][1]["version"]
    promoted = _run("models", "promote", candidate, "--data-dir", data_dir)
    assert promoted.exit_code == 0, promoted.output
    assert registry.current_version(data_dir) == candidate
    back = _run("models", "rollback", "--data-dir", data_dir)
    assert back.exit_code == 0 and registry.current_version(data_dir) == current
    report = json.loads(_run("audit", "--data-dir", data_dir, "--json").stdout)
    languages = {s["segment"]: s for s in report["dimensions"]["language"]}
    assert set(languages) == {"en", "de"} and report["gate"]["passed"] is True
    assert languages["de"]["intent_accuracy"]["n"] > 0
    assert report["overall"]["n_decisions"] == 300


def test_retrain_waits_for_labels_then_records_why(tmp_path: Path) -> None:
    _logged(tmp_path, label_share=0.6)
    args = ("retrain", "--data-dir", tmp_path, "--no-search", "--min-labels", "50")
    first = _run(*args)
    assert first.exit_code == 0 and first.output.startswith("promoted: "), first.output
    assert "new labels (threshold 50)" in first.output
    second = _run(*args)
    assert second.output.startswith("skipped: 0 new labels of 50 needed"), second.output
    metrics = Metrics()
    RetrainOutcomeReader(tmp_path, metrics).refresh()
    text = metrics.render().decode()
    assert 'tailorbot_retrain_last_info{outcome="promoted"' in text
