"""Rollbacks walk back along the promotions: never a swap between the last two versions."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tailorbot.cli import app
from tailorbot.models import registry
from tailorbot.models.pipeline import promotion

T0 = datetime(2026, 1, 1, 10, 0, tzinfo=UTC)
KIND = "reward"


def _promoted(data_dir: Path, count: int) -> list[str]:
    """``count`` versions, each promoted in turn (the gate is not what is tested here)."""
    names = []
    registry.pin_current(data_dir, KIND)  # as save_candidate does: none current yet
    for i in range(count):
        saved = registry.save(data_dir, {"n": i}, {}, kind=KIND, now=T0 + timedelta(minutes=i))
        registry.set_current(data_dir, saved.version, KIND, action="promote", reason="test")
        names.append(saved.version)
    return names


def test_rolling_back_twice_undoes_two_promotions_then_refuses(tmp_path: Path) -> None:
    v1, v2, v3 = _promoted(tmp_path, 3)
    assert promotion.rollback(tmp_path, KIND) == v2
    assert promotion.rollback(tmp_path, KIND) == v1  # not back to v3: that undid no rollback
    assert registry.current_version(tmp_path, KIND) == v1
    with pytest.raises(promotion.PromotionRefused, match="nothing to roll back to"):
        promotion.rollback(tmp_path, KIND)  # v1's promotion had no predecessor
    assert registry.current_version(tmp_path, KIND) == v1


def test_a_promotion_after_a_rollback_is_undone_first(tmp_path: Path) -> None:
    v1, v2, v3 = _promoted(tmp_path, 3)
    promotion.rollback(tmp_path, KIND)  # v2
    registry.set_current(tmp_path, v3, KIND, action="promote", reason="test")
    assert promotion.rollback(tmp_path, KIND) == v2
    assert promotion.rollback(tmp_path, KIND) == v1


def test_a_pointer_moved_outside_the_history_is_refused(tmp_path: Path) -> None:
    v1, v2 = _promoted(tmp_path, 2)
    (registry.kind_dir(tmp_path, KIND) / registry.CURRENT_FILE).write_text(v1 + "\n")
    with pytest.raises(promotion.PromotionRefused, match="not the one the history last"):
        promotion.rollback(tmp_path, KIND)


def test_rollback_to_a_deleted_version_is_one_line(tmp_path: Path) -> None:
    v1, v2 = _promoted(tmp_path, 2)
    shutil.rmtree(registry.kind_dir(tmp_path, KIND) / v1)
    result = CliRunner().invoke(
        app, ["models", "rollback", "--kind", KIND, "--data-dir", str(tmp_path)]
    )
    assert result.exit_code == 1, result.output
    assert result.stderr.strip().splitlines() == [
        f"error: cannot roll back to {KIND} version {v1}: its files are gone from "
        f"{registry.kind_dir(tmp_path, KIND)}"
    ]
    assert registry.current_version(tmp_path, KIND) == v2


def test_a_missing_model_is_one_line_from_any_command(capsys: pytest.CaptureFixture[str]) -> None:
    import typer

    from tailorbot.cli.common import reports_errors

    @reports_errors
    def command() -> None:
        raise registry.ModelNotFoundError("no reward model version x under /tmp/d")

    with pytest.raises(typer.Exit):
        command()
    assert capsys.readouterr().err.strip() == "error: no reward model version x under /tmp/d"
