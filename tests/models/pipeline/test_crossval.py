"""Cross-validation scores each fold with a temperature fitted on other rows than the fold's."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from tailorbot.models.intent.tfidf import TfidfIntentModel
from tailorbot.models.pipeline import crossval
from tailorbot.models.pipeline.crossval import IntentParams, cross_validate

WORDS = {
    "card": ["card", "arrive", "delivery", "post", "mail", "missing", "late", "where", "sent"],
    "top_up": ["top", "up", "money", "funds", "add", "load", "balance", "wallet", "cash"],
    "refund": ["refund", "return", "back", "charge", "reverse", "claim", "dispute", "owe", "got"],
}


def _rows() -> tuple[list[str], list[str]]:
    """Distinct texts (a text names its row), 12 of each intent, overlapping in words."""
    texts, labels = [], []
    for label, words in WORDS.items():
        for i in range(12):
            texts.append(f"{words[i % 9]} {words[(i + 2) % 9]} {words[(i * 5 + 1) % 9]} n{i}")
            labels.append(label)
    return texts, labels


@pytest.mark.parametrize("logged", [False, True])
def test_each_fold_is_scored_with_a_temperature_calibrated_on_other_rows(
    monkeypatch: pytest.MonkeyPatch, logged: bool
) -> None:
    """Spies on the temperature fit and on the scoring: per fold, the rows the temperature is
    fitted on are disjoint from the scored ones (before 2026-11-30 they were the same rows),
    they come from the fold's training side, and the scored model keeps that temperature."""
    texts, labels = _rows()
    events: list[tuple[str, Any, Any]] = []
    calibrate = TfidfIntentModel.calibrate

    def spy_calibrate(
        model: TfidfIntentModel, texts: Sequence[str], labels: Sequence[str]
    ) -> TfidfIntentModel:
        calibrate(model, texts, labels)
        events.append(("calibrated", set(texts), model.temperature))
        return model

    def spy_score(model: Any, texts: Sequence[str], gold: Sequence[str], cost: float) -> Any:
        events.append(("scored", set(texts), model.temperature))
        return metrics(model, texts, gold, cost)

    metrics = crossval.fold_metrics
    monkeypatch.setattr(TfidfIntentModel, "calibrate", spy_calibrate)
    monkeypatch.setattr(crossval, "fold_metrics", spy_score)
    ages = [float(i % 12) for i in range(len(texts))] if logged else None  # row n0 is newest
    k = 3
    scores = cross_validate(IntentParams(model="tfidf"), texts, labels, k=k, ages_days=ages)

    assert len(scores.folds) == k and [e[0] for e in events] == ["calibrated", "scored"] * k
    for (_, calibrated, temperature), (_, scored, used) in zip(
        events[::2], events[1::2], strict=True
    ):
        assert calibrated and not calibrated & scored
        assert used == temperature != 1.0
        if logged:  # as the trainer: the newest of each intent's training rows validate
            for label in WORDS:
                train = [t for t, y in zip(texts, labels, strict=True)
                         if y == label and t not in scored]  # fmt: skip
                newest = min(train, key=lambda t: int(t.rsplit(" n", 1)[1]))
                assert newest in calibrated
