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
def small_dataset(split: str = "train", per_intent: int = 40) -> IntentDataset:
    """``per_intent`` Banking77 rows for each of :data:`SLICE_INTENTS`, plus all bundled
    out-of-scope rows of the split."""
    banking = bundled_dataset("banking77", split)
    taken: dict[str, int] = {}
    keep = []
    for i, label in enumerate(banking.labels):
        if label in SLICE_INTENTS and taken.get(label, 0) < per_intent:
            taken[label] = taken.get(label, 0) + 1
            keep.append(i)
    return banking.subset(keep) + bundled_dataset("out_of_scope", split)


def write_csv(path: Path, dataset: IntentDataset, label_column: str = "intent") -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", label_column])
        writer.writerows(zip(dataset.texts, dataset.labels, strict=True))
    return path
