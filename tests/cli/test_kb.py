from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from tailorbot.cli import app
from tailorbot.kb import default_kb_dir, default_labels_file

runner = CliRunner()


def test_check_demo_kb() -> None:
    args = ["kb", "check", str(default_kb_dir()), "--labels", str(default_labels_file())]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("OK: ")
    assert "labels: 77 of 77 have at least one article" in result.stdout


def test_check_reports_errors(tmp_path: Path) -> None:
    (tmp_path / "kb.yaml").write_text(
        "articles:\n  - {id: a1, title: T, body: B, intents: [card_arival]}\n"
        "  - {id: a1, title: T, body: B, intents: [card_arrival]}\n"
    )
    labels = tmp_path / "labels.txt"
    labels.write_text("card_arrival\n")
    result = runner.invoke(app, ["kb", "check", str(tmp_path), "--labels", str(labels)])
    assert result.exit_code == 1
    assert "kb.yaml: articles[a1].intents[0]: unknown intent 'card_arival'" in result.stderr
    assert "kb.yaml: articles[a1].id: duplicate article id 'a1' (first in kb.yaml)" in result.stderr
    assert "error: 2 error(s)" in result.stderr
    assert "Traceback" not in result.output


def test_check_missing_folder_and_bad_labels(tmp_path: Path) -> None:
    missing = runner.invoke(app, ["kb", "check", str(tmp_path / "nope")])
    assert missing.exit_code == 1
    assert "not a directory" in missing.stderr
    bad = tmp_path / "labels.json"
    bad.write_text("not json")
    result = runner.invoke(app, ["kb", "check", str(default_kb_dir()), "--labels", str(bad)])
    assert result.exit_code == 1
    assert "invalid JSON" in result.stderr


def test_check_fails_a_kb_a_server_cannot_start_from(tmp_path: Path) -> None:
    """No default template: the KB loads (its articles serve `tailorbot recs`), but serving
    refuses it, so the check printed the error and then said OK with exit code 0."""
    (tmp_path / "kb.yaml").write_text(
        "articles:\n  - {id: a1, title: T, body: B., intents: [card_arrival]}\n"
        "templates:\n  - {id: t1, intents: [card_arrival], variants: {a: Hi}}\n"
    )
    result = runner.invoke(app, ["kb", "check", str(tmp_path)])
    assert result.exit_code == 1
    assert "templates: no default template (default: true)" in result.stderr
    assert "error: 1 error(s)" in result.stderr and "OK:" not in result.output
