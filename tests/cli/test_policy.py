"""`tailorbot evaluate-policy` on the log of a small demo run (a real server, real records)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tailorbot.cli import app
from tests.services.decisions.conftest import save_model


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("demo")
    save_model(directory)
    result = CliRunner().invoke(
        app,
        ["demo", "--data-dir", str(directory), "--customers", "30", "--contacts", "120", "--json"],
    )
    assert result.exit_code == 0, result.output
    return directory


def test_evaluate_policy_estimates_every_candidate_with_intervals(demo_dir: Path) -> None:
    args = ["evaluate-policy", "--data-dir", str(demo_dir), "--json", "--estimator", "all"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["decisions"] == 120
    rows = report["policies"]
    names = {r["name"] for r in rows}
    assert {"logged", "fixed:concise", "fixed:step_by_step", "fixed:empathetic"} <= names
    assert {"context_free_bandit", "channel_language_tier_bandit"} <= names
    assert sum(n.startswith("contextual_bandit(") for n in names) == 3
    assert {r["estimator"] for r in rows} == {"on_policy", "ips", "snips", "dr"}
    assert {r["metric"] for r in rows} == {"reward", "csat", "resolution"}
    for r in rows:
        assert set(r) >= {"name", "estimator", "value", "ci95", "n", "ess"}
        assert r["ci95"][0] <= r["value"] <= r["ci95"][1]
        assert 0 < r["ess"] <= r["n"] <= 120
    logged = next(r for r in rows if r["name"] == "logged" and r["metric"] == "reward")
    assert logged["ess"] == logged["n"] == 120


def test_evaluate_policy_on_one_arm(demo_dir: Path) -> None:
    args = ["evaluate-policy", "--data-dir", str(demo_dir), "--arm", "control", "--json"]
    result = CliRunner().invoke(app, args)  # the default estimator: doubly robust
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)["policies"]
    assert {r["estimator"] for r in rows} == {"on_policy", "dr"}
    logged = next(r for r in rows if r["name"] == "logged" and r["metric"] == "reward")
    assert 0 < logged["n"] < 120  # the control arm's share of the decisions
    nobody = CliRunner().invoke(app, ["evaluate-policy", "--data-dir", str(demo_dir), "--arm", "x"])
    assert nobody.exit_code == 1 and "in arm x" in nobody.output


def test_evaluate_policy_since_later_than_the_log_is_one_clear_error(demo_dir: Path) -> None:
    args = ["evaluate-policy", "--data-dir", str(demo_dir), "--since", "2999-01-01T00:00:00Z"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1
    assert "0 logged decisions" in result.output and "Traceback" not in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--since", "yesterday"], "--since: not an ISO-8601 date or time: 'yesterday'"),
        (["--estimator", "magic"], "--estimator: 'magic' is not one of"),
    ],
)
def test_bad_options_are_one_line_errors(demo_dir: Path, args: list[str], message: str) -> None:
    result = CliRunner().invoke(app, ["evaluate-policy", "--data-dir", str(demo_dir), *args])
    assert result.exit_code == 1 and message in result.output


def test_a_data_dir_without_decisions_is_one_clear_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["evaluate-policy", "--data-dir", str(tmp_path)])
    assert result.exit_code == 1 and "no decision store" in result.output


def test_train_reward_and_train_recs_on_the_demo_log_reach_the_registry(demo_dir: Path) -> None:
    run = CliRunner().invoke(app, ["train-reward", "--data-dir", str(demo_dir), "--json"])
    assert run.exit_code == 0, run.output
    card = json.loads(run.output)
    assert card["data"]["splits"] == {"train": 84, "validation": 18, "test": 18}
    assert card["validation"]["candidates"] == 5 and card["test"]["n"] == 18
    assert card["promotion"]["promoted"] is True  # the first version: nothing to beat
    recs = CliRunner().invoke(app, ["train-recs", "--data-dir", str(demo_dir), "--json"])
    assert recs.exit_code == 0, recs.output
    assert json.loads(recs.output)["data"]["by_time"] is True
    listed = CliRunner().invoke(app, ["models", "list", "--data-dir", str(demo_dir), "--json"])
    kinds = json.loads(listed.output)
    assert kinds["reward"]["current"] == card["version"]
    assert kinds["item_knn"]["versions"] and kinds["intent"]["versions"]
    flat = ["train-reward", "--data-dir", str(demo_dir), "--no-search", "--ridge", "1e9"]
    again = CliRunner().invoke(app, [*flat, "--json"])
    assert again.exit_code == 0, again.output
    second = json.loads(again.output)
    assert second["gate"]["metric"] == "rmse" and second["gate"]["against"] == card["version"]
    back = CliRunner().invoke(
        app, ["models", "rollback", "--kind", "reward", "--data-dir", str(demo_dir)]
    )
    if second["promotion"]["promoted"]:
        assert back.exit_code == 0 and card["version"] in back.output
    else:
        assert back.exit_code == 1 and "nothing to roll back to" in back.stderr


def test_rows_without_a_value_or_an_interval_print_n_a_and_why(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from tailorbot.cli.policy import _print, _row
    from tailorbot.models.evaluation.ope import Estimate

    why = "no logged support: the policy never takes an action the log took"
    unsupported = Estimate("fixed:empathetic", "ips", "reward", None, None, 30, 0.0, 1.0, why)
    one_user = Estimate("logged", "on_policy", "reward", 0.5, None, 40, 40.0, 0.0,
                        "no interval: 1 user; an interval needs at least 2")  # fmt: skip
    rows = [_row(unsupported), _row(one_user)]
    assert rows[0]["value"] is None and rows[0]["ci95"] is None and rows[1]["ci95"] is None
    _print(rows, 40)
    lines = capsys.readouterr().out.splitlines()
    assert "n/a  n/a" in lines[-2] and "! no logged support" in lines[-2]
    assert "0.500  n/a" in lines[-1] and "! no interval: 1 user" in lines[-1]


@pytest.mark.parametrize("ridge", ["0", "-1", "nan", "inf"])
def test_a_ridge_penalty_not_above_zero_is_refused_at_the_option(ridge: str) -> None:
    args = ["train-reward", "--data-dir", "/nonexistent", "--no-search", "--ridge", ridge]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "'--ridge'" in lines[0] and "not a finite number above 0" in lines[0]


def test_train_reward_leaves_out_the_users_who_withheld_analytics_consent(
    demo_dir: Path, tmp_path: Path
) -> None:
    from tailorbot.config import Settings
    from tailorbot.store import open_stores

    copy = tmp_path / "demo"
    shutil.copytree(demo_dir, copy)
    args = ["train-reward", "--data-dir", str(copy), "--no-promote", "--json"]
    everyone = json.loads(CliRunner().invoke(app, args).output)["data"]["rows"]
    stores = open_stores(Settings.load(data_dir=copy).resolved_store_url())
    try:
        users = sorted({d["user_id"] for d in stores.decisions.scan() if d.get("feedback")})
        out = users[: len(users) // 2]
        for user in out:
            profile = stores.profiles.get(user) or {}
            stores.profiles.put(user, {**profile, "consent": {"analytics": False}})
        kept = sum(
            d["user_id"] not in out and (d.get("feedback") or {}).get("reward") is not None
            for d in stores.decisions.scan()
        )
    finally:
        stores.close()
    run = CliRunner().invoke(app, args)
    assert run.exit_code == 0, run.output
    assert json.loads(run.output)["data"]["rows"] == kept < everyone
