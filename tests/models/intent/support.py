"""A small, fast slice of the bundled data for intent tests."""

from __future__ import annotations

import csv
import functools
from pathlib import Path

from tailorbot.models.intent import IntentDataset, bundled_dataset

SLICE_INTENTS = (
    "card_arrival",
    "lost_or_stolen_card",
    "exchange_rate",
    "top_up_failed",
    "cash_withdrawal_charge",
    "terminate_account",
    "change_pin",
    "transfer_timing",
)


@functools.cache
def small_dataset(
    split: str = "train", per_intent: int = 40, out_of_scope: int | None = None
) -> IntentDataset:
    """``per_intent`` Banking77 rows for each of :data:`SLICE_INTENTS`, plus the bundled
    out-of-scope rows of the split: all of them, or ``out_of_scope`` of them spread evenly
    over the file (its rows come topic by topic)."""
    banking = bundled_dataset("banking77", split)
    taken: dict[str, int] = {}
    keep = []
    for i, label in enumerate(banking.labels):
        if label in SLICE_INTENTS and taken.get(label, 0) < per_intent:
            taken[label] = taken.get(label, 0) + 1
            keep.append(i)
    negatives = bundled_dataset("out_of_scope", split)
    if out_of_scope is not None and out_of_scope < len(negatives):
        step = len(negatives) / out_of_scope
        negatives = negatives.subset(int(i * step) for i in range(out_of_scope))
    return banking.subset(keep) + negatives


def write_csv(path: Path, dataset: IntentDataset, label_column: str = "intent") -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", label_column])
        writer.writerows(zip(dataset.texts, dataset.labels, strict=True))
    return path
