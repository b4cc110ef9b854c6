"""How the promotion gate scores a model of each kind on held-out rows.

A judge names the kind's gate figure (``metric``, and whether higher is better), scores a
fitted model on held-out rows (the rows a training run saved beside its version), and says
whether the fairness audit applies (it measures intent accuracy per segment: intent models
only). The kinds: ``intent`` (the answer score, :mod:`.crossval`), ``item_knn`` (the CF
recommender's hit rate, :mod:`.cf`) and ``reward`` (the reward model's error, :mod:`.reward`).

>>> judge = judge_for("intent")
>>> judge.metric, judge.higher_is_better, judge.audited
('answer_score', True, True)
>>> round(judge.worse_by(0.80, 0.85), 2), round(judge_for("reward").worse_by(0.30, 0.25), 2)
(0.05, 0.05)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tailorbot.models.pipeline.crossval import DEFAULT_WRONG_ANSWER_COST, fold_metrics

Row = Mapping[str, Any]
KINDS = ("intent", "item_knn", "reward")


@dataclass(frozen=True)
class Judge:
    """The base judge: subclasses score; :meth:`worse_by` compares the gate figure."""

    kind: str = ""
    metric: str = ""
    higher_is_better: bool = True
    audited: bool = False

    def score(self, model: Any, rows: Sequence[Row]) -> dict[str, Any]:
        raise NotImplementedError

    def worse_by(self, candidate: float, current: float) -> float:
        """How much worse the candidate's figure is than the current one's (< 0: better)."""
        return current - candidate if self.higher_is_better else candidate - current


@dataclass(frozen=True)
class IntentJudge(Judge):
    kind: str = "intent"
    metric: str = "answer_score"
    higher_is_better: bool = True
    audited: bool = True
    wrong_answer_cost: float = DEFAULT_WRONG_ANSWER_COST

    def score(self, model: Any, rows: Sequence[Row]) -> dict[str, Any]:
        texts, gold = [str(r["text"]) for r in rows], [str(r["intent"]) for r in rows]
        return fold_metrics(model, texts, gold, self.wrong_answer_cost)


def judge_for(kind: str) -> Judge:
    """The judge of ``kind``; a ValueError names the kinds there are."""
    if kind == "intent":
        return IntentJudge()
    if kind == "item_knn":
        from tailorbot.models.pipeline.cf import CFJudge

        return CFJudge()
    if kind == "reward":
        from tailorbot.models.pipeline.reward import RewardJudge

        return RewardJudge()
    raise ValueError(f"no promotion gate for model kind {kind!r}; kinds: {', '.join(KINDS)}")
