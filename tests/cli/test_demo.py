"""`tailorbot demo` and `tailorbot simulate` end to end, on a small model (seconds, not minutes)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tailorbot.api.server import EmbeddedServer
from tailorbot.cli import app
from tests.services.decisions.conftest import save_model, settings_for


def test_demo_reports_a_measured_ab_comparison(tmp_path: Path) -> None:
    save_model(tmp_path)  # the demo uses it instead of training on all of Banking77
    result = CliRunner().invoke(
        app,
        ["demo", "--data-dir", str(tmp_path), "--customers", "20", "--contacts", "60", "--json"],
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["conversations"] == 60
    arms = report["experiment"]["arms"]
    assert arms["personalized"]["feedback"] + arms["control"]["feedback"] == 60
    assert arms["personalized"]["feedback"] > 0 and arms["control"]["feedback"] > 0
    assert 0.0 <= report["intent_accuracy"] <= 1.0
    assert report["events_processed"] > 60  # sessions, messages and feedback events
    ab = report["ab"]
    assert ab["control"] == "channel_language_tier_bandit"
    assert ab["clusters"].startswith("users")
    for lift in (ab["csat_lift"], ab["resolution_lift"]):
        low, high = lift["ci95"]
        assert low <= lift["estimate"] <= high
        assert lift["always_valid_ci95"][0] <= low and high <= lift["always_valid_ci95"][1]


def test_demo_in_the_null_world_with_a_named_control(tmp_path: Path) -> None:
    save_model(tmp_path)
    config = tmp_path / "tailorbot.toml"
    config.write_text('control_variant = "empathetic"\n')
    result = CliRunner().invoke(
        app,
        [
            "demo", "--data-dir", str(tmp_path), "--config", str(config), "--customers", "10",
            "--contacts", "30", "--json", "--null-world", "--seed", "2",
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["ab"]["control"] == "fixed_variant:empathetic"
    assert report["preferred_variant_share"]["control"] == 1.0  # everyone prefers empathetic


def test_simulate_drives_a_running_server(tmp_path: Path) -> None:
    save_model(tmp_path)
    with EmbeddedServer(settings_for(tmp_path)) as server:
        result = CliRunner().invoke(
            app, ["simulate", "--url", server.url, "--customers", "5", "--contacts", "12"]
        )
    assert result.exit_code == 0, result.output
    report = json.loads(result.output[result.output.index("{") :])
    assert report["conversations"] == 12
    assert report["experiment"]["arms"]["personalized"]["feedback"] == 12


def test_simulate_without_a_server_is_one_clear_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["simulate", "--url", "http://127.0.0.1:9", "--contacts", "1", "--customers", "1"]
    )
    assert result.exit_code != 0
    assert "cannot reach the tailorbot server" in result.output
    assert "Traceback" not in result.output


def test_the_demos_first_model_goes_through_the_pipeline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An empty data dir: the demo trains its model through the pipeline (a slice of the
    bundled data here, for time) and promotes it through the gate before serving it."""
    from tailorbot.config import Settings
    from tailorbot.models import registry
    from tailorbot.sim import demo as sim_demo
    from tests.models.intent.support import small_dataset

    monkeypatch.setattr(sim_demo, "default_dataset", lambda *_, **__: small_dataset(per_intent=20))
    said: list[str] = []
    card = sim_demo.ensure_model(Settings.load(data_dir=tmp_path), said.append)
    assert "70/15/15 split, 5-fold CV, one test" in said[0]
    saved = registry.load_current(tmp_path)
    assert card["version"] == saved.version and card["gate"]["passed"] is True
    assert card["metrics"]["split"] == "test" and card["cv"]["k"] == 5
    assert card["default_model"] == "HybridIntentModel"  # the served kind (intent_model)
    assert (saved.path / registry.HELDOUT_FILE).is_file()
    assert sim_demo.ensure_model(Settings.load(data_dir=tmp_path), said.append) == card
    assert said[-1] == f"using intent model {saved.version} from {tmp_path}"
