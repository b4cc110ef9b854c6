"""When the bot should not answer: the fallback rule and its calibration on held-out data.

The rule fires, in this order of reasons, when the top intent is ``out_of_scope``
(``"out_of_scope"``), when the message's similarity to its nearest in-scope training message
is below ``min_similarity`` (``"unfamiliar"``; only a model that tells it, and only a floor
calibration chose), when the top probability is below ``threshold`` (``"low_confidence"``),
or when the top two probabilities are closer than ``margin`` (``"small_margin"``).

:func:`calibrate_fallback` picks ``threshold`` and ``margin`` on a validation set by grid
search, maximizing::

    in_scope_accuracy + oos_recall - wrong_answer_cost * wrong_answer_rate

* in_scope_accuracy: share of in-scope rows answered (no fallback) with the right intent;
* oos_recall: share of ``out_of_scope`` rows on which the fallback fires (0 without any);
* wrong_answer_rate: share of in-scope rows answered with a wrong intent.

The first two terms alone never hold back an in-scope answer, however unsure, so once the
``out_of_scope`` class catches the validation negatives the thresholds stay at 0 and unseen
kinds of out-of-scope text go unnoticed. The third term prices a wrong answer: with the
default cost 0.25, training on Banking77 + the bundled OOS rows picks a threshold around
0.15-0.2 and hands off about 5 % of test messages; with cost 1 it hands off every answer
more likely wrong than right (about 13 %). All terms are rates, so no class size dominates;
ties go to the smaller threshold and margin (answer more often).

An operator who would rather state the trade-off directly passes ``target_oos_recall`` (the
``fallback_target_recall`` setting): among the grid points whose validation OOS recall reaches
it, the one with the best in-scope accuracy wins (ties: the smaller threshold and margin);
when none reaches it, the one with the highest recall. Without ``out_of_scope`` rows in
validation the target cannot be measured and the objective above is used. With a target, the
rows' ``similarity`` (when the model can tell it) adds a similarity floor to the grid: an
out-of-scope message the classifier answers confidently can still be far from every training
message. The floor is not tried for the cost objective: the class alone meets it, and the
floor costs a product with every training message on each served message.

>>> policy = FallbackPolicy(threshold=0.5, margin=0.1)
>>> policy.decide([("card_arrival", 0.45), ("card_linking", 0.3)])
FallbackDecision(triggered=True, reason='low_confidence')
>>> policy.decide([("card_arrival", 0.9), ("card_linking", 0.05)]).triggered
False
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any, NamedTuple

import numpy as np

from tailorbot.models.intent.base import OUT_OF_SCOPE, FallbackDecision

THRESHOLD_GRID = tuple(round(0.025 * i, 3) for i in range(39))  # 0.0 .. 0.95
MARGIN_GRID = tuple(round(0.025 * i, 3) for i in range(21))  # 0.0 .. 0.5
# Where a similarity floor may sit: quantiles of the validation rows' own similarities (a
# floor above the median would refuse half of everything).
SIMILARITY_QUANTILES = tuple(round(0.02 * i, 2) for i in range(1, 26))  # 0.02 .. 0.5


# The decisions decide() returns: frozen, so one of each is shared by every prediction (a
# frozen dataclass costs about a microsecond to build, and every message makes one).
_ANSWERED = FallbackDecision(False)
_FIRED = {
    reason: FallbackDecision(True, reason)
    for reason in ("out_of_scope", "unfamiliar", "low_confidence", "small_margin")
}


@dataclass(frozen=True, slots=True)
class FallbackPolicy:
    """The fallback rule; the defaults never fire except on the ``out_of_scope`` class."""

    threshold: float = 0.0
    margin: float = 0.0
    oos_label: str = OUT_OF_SCOPE
    min_similarity: float | None = None

    def decide(
        self, ranking: Sequence[tuple[str, float]], similarity: float | None = None
    ) -> FallbackDecision:
        """Decide on a ranking sorted by probability, best first, and the message's
        ``similarity`` to the training messages (read only with ``min_similarity``)."""
        if not ranking:
            raise ValueError("ranking is empty")
        top_name, top_p = ranking[0]
        second_p = ranking[1][1] if len(ranking) > 1 else 0.0
        if top_name == self.oos_label:
            return _FIRED["out_of_scope"]
        if (
            self.min_similarity is not None
            and similarity is not None
            and similarity < self.min_similarity
        ):
            return _FIRED["unfamiliar"]
        if top_p < self.threshold:
            return _FIRED["low_confidence"]
        if top_p - second_p < self.margin:
            return _FIRED["small_margin"]
        return _ANSWERED

    def fires(
        self, probs: np.ndarray, labels: Sequence[str], similarity: np.ndarray | None = None
    ) -> np.ndarray:
        """Vectorized :meth:`decide`: a boolean per row of ``probs``."""
        top1, p1, p2 = _top_two(probs)
        oos = np.asarray([name == self.oos_label for name in labels])[top1]
        fired = oos | (p1 < self.threshold) | ((p1 - p2) < self.margin)
        if self.min_similarity is not None and similarity is not None:
            fired |= np.asarray(similarity) < self.min_similarity
        return fired

    def to_dict(self) -> dict[str, float | str | None]:
        return asdict(self)

    def __setstate__(self, state: Any) -> None:
        # Policies pickled before ``min_similarity`` existed hold three values.
        for f, value in itertools.zip_longest(fields(self), state):
            object.__setattr__(self, f.name, f.default if value is None else value)


@dataclass(frozen=True, slots=True)
class FallbackCalibration:
    """The chosen policy and what it scored on the validation set."""

    policy: FallbackPolicy
    objective: float
    target_oos_recall: float | None
    in_scope_accuracy: float
    oos_recall: float | None  # None when validation had no out_of_scope row
    wrong_answer_rate: float
    wrong_answer_cost: float


def calibrate_fallback(
    probs: np.ndarray,
    gold: Sequence[str],
    labels: Sequence[str],
    *,
    wrong_answer_cost: float = 0.25,
    target_oos_recall: float | None = None,
    oos_label: str = OUT_OF_SCOPE,
    thresholds: Sequence[float] = THRESHOLD_GRID,
    margins: Sequence[float] = MARGIN_GRID,
    similarity: np.ndarray | None = None,
) -> FallbackCalibration:
    """Pick threshold and margin by the objective, or the recall target, of the module doc;
    with ``similarity`` (each row's similarity to the training messages) and a recall target,
    also whether and where to fire below a similarity (:data:`SIMILARITY_QUANTILES` of the
    rows' own values; no similarity rule wins ties, then the lower one)."""
    probs = np.asarray(probs, dtype=float)
    if probs.ndim != 2 or probs.shape[0] != len(gold) or probs.shape[1] != len(labels):
        raise ValueError(f"probs has shape {probs.shape}; expected ({len(gold)}, {len(labels)})")
    if not len(gold):
        raise ValueError("cannot calibrate the fallback on an empty validation set")
    if wrong_answer_cost < 0:
        raise ValueError(f"wrong_answer_cost must be >= 0, got {wrong_answer_cost!r}")
    if target_oos_recall is not None and not 0.0 <= target_oos_recall <= 1.0:
        raise ValueError(f"target_oos_recall must be in [0, 1], got {target_oos_recall!r}")
    if similarity is not None and np.shape(similarity) != (len(gold),):
        raise ValueError(f"similarity has shape {np.shape(similarity)}; expected ({len(gold)},)")
    top1, p1, p2 = _top_two(probs)
    names = np.asarray(labels, dtype=object)[top1]
    gold_arr = np.asarray(gold, dtype=object)
    is_oos = gold_arr == oos_label
    in_scope = ~is_oos
    correct = names == gold_arr
    target = target_oos_recall if is_oos.any() else None

    t = np.asarray(thresholds, dtype=float)[:, None, None]
    m = np.asarray(margins, dtype=float)[None, :, None]
    base = (names == oos_label) | (p1 < t) | ((p1 - p2) < m)  # (T, M, n)

    def grid(fired: np.ndarray) -> _GridPoint:
        """The best (threshold, margin) point when ``fired`` (T, M, n) says who falls back."""
        answered = ~fired
        accuracy = _rate(answered & correct, in_scope)
        wrong = _rate(answered & ~correct, in_scope)
        recall = _rate(fired, is_oos)
        objective = accuracy + recall - wrong_answer_cost * wrong
        if target is None:
            score = objective
        elif (recall >= target - 1e-12).any():
            score = np.where(recall >= target - 1e-12, accuracy, -np.inf)
        else:
            score = recall - 2.0  # below every point of any floor that reaches the target
        i, j = np.unravel_index(int(np.argmax(score)), score.shape)  # first max: smallest
        return _GridPoint(
            float(score[i, j]), int(i), int(j), None, float(objective[i, j]),
            float(accuracy[i, j]), float(wrong[i, j]), float(recall[i, j]),
        )  # fmt: skip

    best = grid(base)
    if similarity is not None and target is not None:
        sim = np.asarray(similarity, dtype=float)
        for floor in sorted({float(q) for q in np.quantile(sim, SIMILARITY_QUANTILES)}):
            point = grid(base | (sim < floor))
            if point.score > best.score:  # ties: no floor, then the lower one
                best = point._replace(floor=floor)
    return FallbackCalibration(
        policy=FallbackPolicy(
            float(thresholds[best.i]), float(margins[best.j]), oos_label, best.floor
        ),
        objective=best.objective,
        target_oos_recall=target,
        in_scope_accuracy=best.accuracy,
        oos_recall=best.recall if is_oos.any() else None,
        wrong_answer_rate=best.wrong,
        wrong_answer_cost=wrong_answer_cost,
    )


class _GridPoint(NamedTuple):
    score: float
    i: int
    j: int
    floor: float | None
    objective: float
    accuracy: float
    wrong: float
    recall: float


def _rate(hits: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Share of ``mask`` rows where ``hits`` holds, over the last axis (0 when mask is empty)."""
    total = int(mask.sum())
    if total == 0:
        return np.zeros(hits.shape[:-1])
    return (hits & mask).sum(axis=-1) / total


def _top_two(probs: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Index of the top class, its probability and the runner-up's, per row."""
    if probs.shape[1] == 1:
        return np.zeros(len(probs), dtype=int), probs[:, 0], np.zeros(len(probs))
    part = np.argpartition(-probs, 1, axis=1)[:, :2]
    rows = np.arange(len(probs))
    a, b = probs[rows, part[:, 0]], probs[rows, part[:, 1]]
    top1 = np.where(b > a, part[:, 1], part[:, 0])
    return top1, np.maximum(a, b), np.minimum(a, b)
