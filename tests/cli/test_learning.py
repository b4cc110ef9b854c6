"""The learning loop's commands on a real log: label export/import, dataset build, train,
models list/promote/rollback, audit and retrain."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from tailorbot.cli import app
from tailorbot.metrics import Metrics
from tailorbot.models import registry
from tailorbot.services.decisions.model_swap import RetrainOutcomeReader
from tests.models.pipeline.support import INTENTS, text_for, write_support_log

runner = CliRunner()


def _logged(data_dir: Path, label_share: float) -> dict[str, str]:
    return write_support_log(data_dir, label_share)


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
    first = _run("train", "--data", built, "--data-dir", data_dir, "--no-search", "--folds", "3")
    assert first.exit_code == 0, first.output
    assert "3-fold CV" in first.output and "by time" in first.output
    assert "is now current" in first.output
    current = registry.current_version(data_dir)
    again = _run("models", "promote", current, "--data-dir", data_dir)
    assert again.exit_code == 1 and "current version already" in again.stderr
    second = _run("train", "--data", built, "--data-dir", data_dir, "--no-search", "--folds",
                  "3", "--no-promote")  # fmt: skip
    assert second.exit_code == 0 and "promotion" not in second.output
    listed = json.loads(
        _run("models", "list", "--kind", "intent", "--data-dir", data_dir, "--json").stdout
    )
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


def _language_file(path: Path, language: str, per_intent: int, seed: int) -> Path:
    rng = np.random.default_rng(seed)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "intent"])
        for intent in INTENTS:
            writer.writerows([text_for(rng, language, intent), intent] for _ in range(per_intent))
    return path


def test_a_candidate_without_the_german_model_is_refused_by_the_audit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The planted unfair candidate, through the commands: the current version routes German
    messages to a German model; the candidate was trained without the German data. Its own
    test rows are English only, but the gate also scores it on the current version's German
    test rows, and the audit refuses it on language=de even with the score comparison off."""
    english = _language_file(tmp_path / "en.csv", "en", 120, seed=1)
    german = _language_file(tmp_path / "de.csv", "de", 120, seed=2)
    common = ("--data-dir", tmp_path / "dd", "--no-search", "--folds", "3")
    fair = _run("train", "--data", english, "--language-data", f"de={german}", *common)
    assert fair.exit_code == 0 and "is now current" in fair.output, fair.output
    current = registry.current_version(tmp_path / "dd")
    monkeypatch.setenv("TAILORBOT_PROMOTION_TOLERANCE", "1.0")  # the comparison switched off
    planted = _run("train", "--data", english, *common)
    assert planted.exit_code == 0, planted.output
    assert "kept the current version" in planted.output and "audit: language=de" in planted.output
    assert registry.current_version(tmp_path / "dd") == current
    candidate = registry.versions(tmp_path / "dd")[-1]
    card = registry.load(tmp_path / "dd", candidate).metadata
    assert card["gate"]["passed"] is False and card["audit"]["passed"] is False
    assert card["audit"]["segments"]["language=de"] < card["audit"]["segments"]["language=en"]


def test_the_audit_gate_fails_with_nothing_to_audit(tmp_path: Path) -> None:
    from tailorbot.config import Settings
    from tailorbot.runtime import Runtime

    Runtime(Settings.load(data_dir=tmp_path, run_worker_in_server=False)).stop()  # empty
    result = _run("audit", "--data-dir", tmp_path, "--gate")
    assert result.exit_code == 1, result.output
    assert result.stderr.strip().splitlines() == [
        "error: no labelled rows: nothing to audit (model logged): the gate fails without data"
    ]
