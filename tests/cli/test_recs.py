from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

from typer.testing import CliRunner

from tailorbot.cli import app
from tailorbot.config import Settings
from tailorbot.log import open_log
from tailorbot.store import open_stores
from tests.models.recommend.test_evaluation import START, session_events, write

KB_YAML = """
articles:
  - id: kb-where-is-my-card
    title: Where is my card?
    intents: [card_arrival]
    body: Your card arrives within a week. Card delivery can be tracked in the app.
  - id: kb-express-courier
    title: Express courier
    intents: [card_arrival]
    body: Ask for an express courier; it brings it the next day.
"""

runner = CliRunner()


def make_kb(tmp_path: Path) -> Path:
    kb_dir = tmp_path / "kb"
    kb_dir.mkdir()
    (kb_dir / "articles.yaml").write_text(KB_YAML)
    return kb_dir


def test_evaluate_recs_reports_both_policies(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    settings = Settings.load(data_dir=data_dir)
    log = open_log(settings.resolved_log_url(), settings.partitions)
    stores = open_stores(settings.resolved_store_url())
    events = []
    for i in range(24):
        user = f"u{i % 6}"
        gold = i % 6 < 3
        stores.profiles.put(user, {"tier": "gold" if gold else "standard"})
        article = "kb-express-courier" if gold else "kb-where-is-my-card"
        events += session_events(user, f"s{i}", START + timedelta(hours=i), article)
    write(log, events)
    log.close()
    stores.close()
    kb = str(make_kb(tmp_path))

    # two records the stream worker would not apply (dead letters) are read past
    poisoned = open_log(settings.resolved_log_url(), settings.partitions)
    poisoned.append([("u0", b"not json"), ("u1", b'{"type": "message", "user_id": "u1"}')])
    poisoned.close()

    result = runner.invoke(
        app, ["evaluate-recs", "--data-dir", str(data_dir), "--kb", kb, "--k", "1", "--json"]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["sessions"] == 24 and report["k"] == 1
    hybrid, baseline = report["policies"]["hybrid"], report["policies"]["intent_only"]
    assert baseline["hit_rate"] == 0.5
    assert hybrid["hit_rate"] > baseline["hit_rate"]

    text = runner.invoke(app, ["evaluate-recs", "--data-dir", str(data_dir), "--kb", kb])
    assert text.exit_code == 0, text.output
    assert "hybrid" in text.stdout and "intent_only" in text.stdout and "hit_rate@3" in text.stdout


def test_missing_or_empty_log_is_a_clear_error(tmp_path: Path) -> None:
    kb = str(make_kb(tmp_path))
    missing = runner.invoke(
        app, ["evaluate-recs", "--data-dir", str(tmp_path / "none"), "--kb", kb]
    )
    assert missing.exit_code == 1
    assert "no event log at" in missing.stderr and "Traceback" not in missing.output

    url = f"sqlite:///{tmp_path}/empty.db"
    open_log(url, 8).close()
    empty = runner.invoke(app, ["evaluate-recs", "--log-url", url, "--kb", kb])
    assert empty.exit_code == 1
    assert "event log is empty" in empty.stderr

    write_log = open_log(url, 8)
    write(write_log, session_events("u1", "s1", START, None))
    write_log.close()
    unresolved = runner.invoke(app, ["evaluate-recs", "--log-url", url, "--kb", kb])
    assert unresolved.exit_code == 1
    assert "no session to evaluate" in unresolved.stderr


def test_train_recs_trains_through_the_pipeline_and_promotes(tmp_path: Path) -> None:
    from tailorbot.models import registry

    data_dir = tmp_path / "data"
    settings = Settings.load(data_dir=data_dir)
    log = open_log(settings.resolved_log_url(), settings.partitions)
    events = []
    for i in range(12):
        article = "kb-express-courier" if (i // 4) % 2 else "kb-where-is-my-card"
        events += session_events(f"u{i % 4}", f"s{i}", START + timedelta(hours=i), article)
    write(log, events)
    log.close()
    args = ["train-recs", "--data-dir", str(data_dir), "--no-search", "--shrinkage", "1"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "selection on validation (1 candidates" in result.stdout
    assert "touched once" in result.stdout and "is now current" in result.stdout
    saved = registry.load_current(data_dir, kind="item_knn")
    assert saved.metadata["params"]["shrinkage"] == 1.0 and saved.metadata["parent"] is None
    assert saved.metadata["data"]["splits"]["test"] == saved.metadata["test"]["n"] > 0
    assert "kb-express-courier" in saved.model.neighbours_of("kb-where-is-my-card")
    searched = runner.invoke(app, ["train-recs", "--data-dir", str(data_dir), "--json"])
    assert searched.exit_code == 0, searched.output
    card = json.loads(searched.stdout)
    assert card["validation"]["candidates"] == 32 and card["parent"] == saved.version

    fixed = runner.invoke(app, ["train-recs", "--data-dir", str(data_dir), "--shrinkage", "1"])
    assert fixed.exit_code == 1 and "add --no-search" in fixed.stderr
    missing = runner.invoke(app, ["train-recs", "--data-dir", str(tmp_path / "none")])
    assert missing.exit_code == 1 and "no event log at" in missing.stderr


def test_evaluate_recs_time_split_reports_three_policies_with_intervals(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    settings = Settings.load(data_dir=data_dir)
    log = open_log(settings.resolved_log_url(), settings.partitions)
    events = []
    for i in range(40):
        article = "kb-express-courier" if i % 2 else "kb-where-is-my-card"
        events += session_events(f"u{i % 8}", f"s{i}", START + timedelta(hours=i), article)
    write(log, events)
    log.close()
    kb = str(make_kb(tmp_path))
    args = ["evaluate-recs", "--data-dir", str(data_dir), "--kb", kb, "--split", "time"]
    result = runner.invoke(app, [*args, "--json", "--bootstrap", "200"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["split"]["train_share"] == 0.7 and report["sessions"] < 40
    assert set(report["policies"]) == {"hybrid", "control", "intent_only", "popularity"}
    assert len(report["policies"]["popularity"]["ci95"]["ndcg"]) == 2
    text = runner.invoke(app, args)
    assert text.exit_code == 0 and "time split" in text.stdout and "popularity" in text.stdout
    bad = runner.invoke(app, ["evaluate-recs", "--data-dir", str(data_dir), "--split", "random"])
    assert bad.exit_code == 1 and "--split" in bad.stderr and "Traceback" not in bad.output
