"""Held-out data: a 70/15/15 train/validation/test split and stratified k-fold.

:func:`split_rows` splits within each label, so every split has the label mix of the data.
With ``by_time`` (rows from a log, carrying ``epoch``), each label's rows are taken in time
order: the oldest 70 % train, the next 15 % validate, the newest 15 % test, as the model will
meet the future. Otherwise rows are shuffled with ``seed``. A label with too few rows for three
splits keeps them in train (a model cannot be measured on a label it never saw). Copies of one
text under one label never straddle two splits: a log repeats messages ("hi", a common
question), and a test row the model trained on word for word measures memory, not the model.
The shares are then shares of distinct texts; a label without repeats splits exactly as
before. (One text under two labels may: that is ambiguity the model cannot memorize away.)
:func:`kfold_indices` gives stratified folds over train + validation for model selection
(the test split is kept for the one final report); given the rows' texts, copies of one text
share a fold (``StratifiedGroupKFold``), for the same reason: until 2026-11-30 they did not,
and a search rewarded memorizing repeated messages.

>>> rows = [{"text": str(i), "intent": "a" if i % 2 else "b", "epoch": i} for i in range(40)]
>>> split = split_rows(rows, by_time=True)
>>> len(split.train), len(split.validation), len(split.test)
(28, 6, 6)
>>> max(r["epoch"] for r in split.train) < min(r["epoch"] for r in split.test)
True
>>> repeated = [{"text": f"t{i % 10}", "intent": "a", "epoch": i} for i in range(40)]
>>> split = split_rows(repeated, by_time=True)
>>> {r["text"] for r in split.train} & {r["text"] for r in split.test}
set()
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

Row = Mapping[str, Any]
DEFAULT_FRACTIONS = (0.70, 0.15, 0.15)


@dataclass(frozen=True)
class Split:
    train: list[Row]
    validation: list[Row]
    test: list[Row]

    @property
    def selection(self) -> list[Row]:
        """Train + validation: what k-fold model selection may see."""
        return [*self.train, *self.validation]

    def sizes(self) -> dict[str, int]:
        return {
            "train": len(self.train),
            "validation": len(self.validation),
            "test": len(self.test),
        }


def row_text(row: Row) -> Hashable:
    """What makes two rows copies for a text model: the text (a row without one is its own)."""
    text = row.get("text")
    return id(row) if text is None else str(text)


def split_rows(
    rows: Sequence[Row],
    fractions: tuple[float, float, float] = DEFAULT_FRACTIONS,
    *,
    by_time: bool = False,
    seed: int = 0,
    same: Callable[[Row], Hashable] = row_text,
) -> Split:
    """Stratified train/validation/test split (see the module doc); rows of one label with
    the same ``same(row)`` are copies, kept in one split."""
    if len(fractions) != 3 or any(f < 0 for f in fractions) or abs(sum(fractions) - 1) > 1e-9:
        raise ValueError(f"fractions must be three shares summing to 1, got {fractions!r}")
    rng = np.random.default_rng(seed)
    by_label: dict[str, list[int]] = {}
    for i, row in enumerate(rows):
        by_label.setdefault(str(row["intent"]), []).append(i)
    parts: tuple[list[int], list[int], list[int]] = ([], [], [])
    for label in sorted(by_label):
        members = by_label[label]
        if by_time:
            members = sorted(members, key=lambda i: (rows[i]["epoch"], i))
        else:
            members = [members[int(k)] for k in rng.permutation(len(members))]
        copies: dict[Hashable, list[int]] = {}  # each text's rows, in the order of its first
        for i in members:
            copies.setdefault(same(rows[i]), []).append(i)
        groups = list(copies.values())
        n = len(groups)
        n_val = round(fractions[1] * n)
        n_test = round(fractions[2] * n)
        if n - n_val - n_test < 1 or n < 3:  # too few: all to train
            n_val = n_test = 0
        n_train = n - n_val - n_test
        cuts = (groups[:n_train], groups[n_train : n_train + n_val], groups[n_train + n_val :])
        for part, chosen in zip(parts, cuts, strict=True):
            part.extend(i for group in chosen for i in group)
    return Split(*([rows[i] for i in sorted(part)] for part in parts))


def kfold_indices(
    labels: Sequence[str],
    k: int = 5,
    seed: int = 0,
    *,
    groups: Sequence[Hashable] | None = None,
    hold_out_every_row: bool = False,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Stratified ``(train_idx, val_idx)`` pairs; rows with the same ``groups`` value (their
    :func:`row_text`) are held out together. Labels rarer than ``k`` stay in training, unless
    ``hold_out_every_row``: then their rows are held out too, spread over the folds (for
    out-of-fold predictions, which every row needs)."""
    from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

    if k < 2:
        raise ValueError(f"k must be >= 2, got {k}")
    labels_arr = np.asarray(labels, dtype=object)
    names, counts = np.unique(labels_arr, return_counts=True)
    common = set(names[counts >= k])
    foldable = np.asarray([label in common for label in labels_arr])
    idx = np.flatnonzero(foldable)
    rare = np.flatnonzero(~foldable)
    if len(set(labels_arr[idx])) < 2:
        raise ValueError(f"k-fold needs at least 2 labels with {k} or more rows each")
    y = labels_arr[idx].astype(str)
    if groups is None:
        folds = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed).split(idx, y)
    else:
        codes = _group_codes(groups)
        grouped = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed)
        folds = grouped.split(idx, y, codes[idx])
    held = [idx[val] for _, val in folds]
    if hold_out_every_row:
        # Round-robin by group, so copies of a rare label's text share a fold as well.
        codes = _group_codes(groups) if groups is not None else np.arange(len(labels_arr))
        order = {code: n for n, code in enumerate(dict.fromkeys(codes[rare].tolist()))}
        for i in rare.tolist():
            fold = order[codes[i]] % k
            held[fold] = np.append(held[fold], i)
    everything = np.arange(len(labels_arr))
    return [(np.setdiff1d(everything, val), np.sort(val)) for val in held]


def _group_codes(groups: Sequence[Hashable]) -> np.ndarray:
    """One integer per distinct group value (StratifiedGroupKFold sorts its groups)."""
    codes: dict[Hashable, int] = {}
    return np.asarray([codes.setdefault(g, len(codes)) for g in groups])
