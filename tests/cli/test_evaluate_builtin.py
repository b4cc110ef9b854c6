"""`tailorbot evaluate` on the bundled test splits keeps the built-in intents the settings
keep, as `train` does: one left out is scored as out_of_scope, not as an unknown intent."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from tailorbot.cli import app
from tailorbot.models import registry
from tailorbot.models.intent import default_dataset
from tests.services.decisions.conftest import save_model


def test_evaluate_honours_the_builtin_intents_setting(tmp_path: Path) -> None:
    save_model(tmp_path)
    config = tmp_path / "tailorbot.toml"
    config.write_text('builtin_intents = ["human_handoff"]\n')
    args = ["evaluate", "--data-dir", str(tmp_path), "--config", str(config), "--json"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    known = set(registry.load_current(tmp_path).model.labels)
    expected = default_dataset("test", builtin_intents=["human_handoff"])
    unknown = sum(label not in known for label in expected.labels)
    assert f"note: {unknown} of {len(expected)} rows" in result.stderr


def test_no_builtin_intents_kept_means_none_not_all() -> None:
    from tailorbot.cli.train import training_rows
    from tailorbot.models.intent.dataset import BUILTIN_INTENTS

    rows, _, _ = training_rows(None, ())  # `builtin_intents = []`: every one out_of_scope
    assert not {r["intent"] for r in rows} & set(BUILTIN_INTENTS)
