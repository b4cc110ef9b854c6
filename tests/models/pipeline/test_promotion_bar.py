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


def card(data_dir: Path, version: str) -> dict[str, Any]:
    return registry.load_metadata(data_dir, version, KIND)["gate"]


def test_small_losses_in_a_row_stop_at_the_tolerance(tmp_path: Path) -> None:
    first = candidate(tmp_path, 0.800)
    promote(tmp_path, first)
    second = candidate(tmp_path, 0.794)  # 0.006 below the first: within the tolerance
    promote(tmp_path, second)
    assert card(tmp_path, second)["bar"] == first  # it scored below the bar: the bar stays
    third = candidate(tmp_path, 0.788)  # 0.006 below the current, 0.012 below the bar
    with pytest.raises(promotion.PromotionRefused, match=f"below the bar version {first}'s"):
        promote(tmp_path, third)
    assert registry.current_version(tmp_path, KIND) == second
    gate = card(tmp_path, third)
    assert gate["passed"] is False and gate["bar_scores"]["figure"] == 0.800
    assert len(gate["reasons"]) == 1  # the current version alone would have let it through


def test_a_candidate_at_or_above_the_bar_becomes_it(tmp_path: Path) -> None:
    first = candidate(tmp_path, 0.800)
    promote(tmp_path, first)
    assert card(tmp_path, first)["bar"] == first  # the first version is its own bar
    second = candidate(tmp_path, 0.795)
    promote(tmp_path, second)
    third = candidate(tmp_path, 0.805)  # above the bar: it sets the bar from now on
    promote(tmp_path, third)
    assert card(tmp_path, third)["bar"] == third
    fourth = candidate(tmp_path, 0.796)  # 0.009 below the new bar: passes
    promote(tmp_path, fourth)
    assert card(tmp_path, fourth)["bar"] == third
    assert registry.current_version(tmp_path, KIND) == fourth


def test_a_bar_whose_files_are_gone_is_skipped_and_said(tmp_path: Path) -> None:
    first = candidate(tmp_path, 0.800)
    promote(tmp_path, first)
    second = candidate(tmp_path, 0.794)
    promote(tmp_path, second)
    shutil.rmtree(registry.kind_dir(tmp_path, KIND) / first)
    third = candidate(tmp_path, 0.788)  # within the tolerance of the current version
    promote(tmp_path, third)
    gate = card(tmp_path, third)
    assert f"the bar version {first} is gone" in gate["compared_on"]
    assert gate["bar"] == second  # the current version's figure set the new bar's choice
