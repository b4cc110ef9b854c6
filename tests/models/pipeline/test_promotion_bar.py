"""The promotion gate's bar: successive promotions, each within the tolerance of the current
version, may not lose more than the tolerance together."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tailorbot.models import registry
from tailorbot.models.pipeline import promotion
from tailorbot.models.pipeline.audit import AuditGate
from tailorbot.models.pipeline.judge import Judge
from tailorbot.models.pipeline.trainer import TrainingRun

KIND = "reward"  # a kind without the fairness audit: the figures alone decide
GATE = AuditGate(max_gap=0.10, min_rows=20)
TOLERANCE = 0.01


@dataclass(frozen=True)
class Scored:
    """A model whose gate figure is known in advance (saved and loaded like any model)."""

    figure: float


@dataclass(frozen=True)
class FigureJudge(Judge):
    kind: str = KIND
    metric: str = "figure"
    higher_is_better: bool = True
    audited: bool = False

    def score(self, model: Any, rows: Any) -> dict[str, Any]:
        return {"figure": model.figure, "n": len(rows)}


@pytest.fixture(autouse=True)
def figure_judge(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(promotion, "judge_for", lambda kind: FigureJudge())


def candidate(data_dir: Path, figure: float) -> str:
    run = TrainingRun(Scored(figure), {"figure": figure}, [{"text": "t", "y": 1}], frozenset())
    return promotion.save_candidate(data_dir, run, kind=KIND).version


def promote(data_dir: Path, version: str) -> promotion.GateResult:
    return promotion.promote(data_dir, version, GATE, tolerance=TOLERANCE, kind=KIND)


def gate(data_dir: Path, version: str) -> dict[str, Any]:
    return registry.load(data_dir, version, KIND).metadata["gate"]


def bar_now(data_dir: Path) -> str | None:
    """The bar the newest promotion set (what the next gate compares with)."""
    moves = [m for m in registry.history(data_dir, KIND) if m["action"] == "promote"]
    return moves[-1]["bar"] if moves else None


def test_small_losses_in_a_row_stop_at_the_tolerance(tmp_path: Path) -> None:
    first = candidate(tmp_path, 0.800)
    promote(tmp_path, first)
    second = candidate(tmp_path, 0.794)  # 0.006 below the first: within the tolerance
    promote(tmp_path, second)
    assert bar_now(tmp_path) == first  # it scored below the bar: the bar stays
    third = candidate(tmp_path, 0.788)  # 0.006 below the current, 0.012 below the bar
    with pytest.raises(promotion.PromotionRefused, match=f"below the bar version {first}'s"):
        promote(tmp_path, third)
    assert registry.current_version(tmp_path, KIND) == second
    refused = gate(tmp_path, third)
    assert refused["passed"] is False and refused["bar"] == first
    assert refused["bar_scores"]["figure"] == 0.800
    assert len(refused["reasons"]) == 1  # the current version alone would have let it through


def test_a_candidate_at_or_above_the_bar_becomes_it(tmp_path: Path) -> None:
    first = candidate(tmp_path, 0.800)
    promote(tmp_path, first)
    assert bar_now(tmp_path) == first  # the first version is its own bar
    second = candidate(tmp_path, 0.795)
    promote(tmp_path, second)
    third = candidate(tmp_path, 0.805)  # above the bar: it sets the bar from now on
    promote(tmp_path, third)
    assert bar_now(tmp_path) == third
    fourth = candidate(tmp_path, 0.796)  # 0.009 below the new bar: passes
    promote(tmp_path, fourth)
    assert bar_now(tmp_path) == third
    assert registry.current_version(tmp_path, KIND) == fourth


def test_a_refused_attempt_then_a_rollback_keep_the_versions_own_bar(tmp_path: Path) -> None:
    """A refused gate run rewrites the candidate's card: the bar it would have set must not
    become the bar of that version once a rollback makes it current."""
    first = candidate(tmp_path, 0.800)
    promote(tmp_path, first)
    second = candidate(tmp_path, 0.795)
    promote(tmp_path, second)
    third = candidate(tmp_path, 0.810)
    promote(tmp_path, third)
    with pytest.raises(promotion.PromotionRefused):  # 0.015 below the current third
        promote(tmp_path, second)
    assert promotion.rollback(tmp_path, KIND) == second
    fourth = candidate(tmp_path, 0.795)  # as good as the current second, within the first's
    promote(tmp_path, fourth)
    assert gate(tmp_path, fourth)["bar"] == first


@pytest.mark.parametrize("removed", ["the version", "its model file"])
def test_a_bar_that_cannot_be_loaded_is_skipped_and_said(tmp_path: Path, removed: str) -> None:
    first = candidate(tmp_path, 0.800)
    promote(tmp_path, first)
    second = candidate(tmp_path, 0.794)
    promote(tmp_path, second)
    folder = registry.kind_dir(tmp_path, KIND) / first
    if removed == "the version":
        shutil.rmtree(folder)
    else:
        (folder / registry.MODEL_FILE).unlink()
    third = candidate(tmp_path, 0.788)  # within the tolerance of the current version
    promote(tmp_path, third)
    assert f"the bar version {first} is skipped" in gate(tmp_path, third)["compared_on"]
    assert bar_now(tmp_path) == second  # chosen against the current version alone
