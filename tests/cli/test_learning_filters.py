"""What the learning commands leave out of a real data dir: the users who withheld analytics
consent (``train-recs``, ``label export``) and, for ``label export --since``, the messages
before the window."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from tailorbot.cli import app
from tailorbot.config import Settings
from tailorbot.log import open_log
from tailorbot.store import open_stores
from tests.cli.support import one_error_line
from tests.models.pipeline.support import write_support_log
from tests.models.pipeline.test_cf_reward import co_use_log
from tests.models.recommend.test_evaluation import write

runner = CliRunner()
NO_ANALYTICS = {"consent": {"analytics": False}}


def _withhold(data_dir: Path, users: list[str]) -> None:
    """Store a profile withholding analytics consent for each of ``users``."""
    settings = Settings.load(data_dir=data_dir)
    stores = open_stores(settings.resolved_store_url())
    try:
        for user in users:
            stores.profiles.put(user, NO_ANALYTICS)
    finally:
        stores.close()


def _export(data_dir: Path, *options: str) -> list[dict[str, Any]]:
    out = data_dir / "todo.csv"
    args = ["label", "export", "--data-dir", str(data_dir), "--out", str(out), "--limit", "1000"]
    result = runner.invoke(app, [*args, *options])
    assert result.exit_code == 0, result.output
    with out.open() as handle:
        return list(csv.DictReader(handle))


def test_train_recs_leaves_out_the_users_who_withheld_consent(tmp_path: Path) -> None:
    events = co_use_log()
    settings = Settings.load(data_dir=tmp_path)
    log = open_log(settings.resolved_log_url(), settings.partitions)
    write(log, events)
    log.close()
    out = [f"u{u}" for u in range(0, 60, 3)]
    _withhold(tmp_path, out)
    args = ["train-recs", "--data-dir", str(tmp_path), "--no-search", "--json"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    kept = [e for e in events if e["user_id"] not in out]
    assert json.loads(result.stdout)["data"]["events"] == len(kept) < len(events)
    _withhold(tmp_path, [f"u{u}" for u in range(60)])
    refused = runner.invoke(app, args)
    assert refused.exit_code == 1
    one_error_line(refused.stderr, "consents to analytics")


def test_label_export_leaves_out_the_users_who_withheld_consent(tmp_path: Path) -> None:
    write_support_log(tmp_path, label_share=0.5)
    everyone = _export(tmp_path)
    out = [f"u{u}" for u in range(30)]
    _withhold(tmp_path, out)
    rows = _export(tmp_path)
    assert rows and not {r["user_id"] for r in rows} & set(out)
    assert len(rows) == sum(r["user_id"] not in out for r in everyone)


def test_label_export_since_keeps_the_messages_from_then_on(tmp_path: Path) -> None:
    write_support_log(tmp_path, label_share=0.5)
    everyone = _export(tmp_path)
    since = sorted(r["timestamp"] for r in everyone)[len(everyone) // 2]
    rows = _export(tmp_path, "--since", since)
    assert rows and all(r["timestamp"] >= since for r in rows)
    assert len(rows) == sum(r["timestamp"] >= since for r in everyone) < len(everyone)
