from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from tailorbot.models.pipeline.splits import kfold_indices, split_rows


def _rows(n: int) -> list[dict]:
    rng = np.random.default_rng(0)
    return [
        {"text": str(i), "intent": f"i{i % 4}", "epoch": float(rng.integers(10_000))}
        for i in range(n)
    ]


def test_split_is_70_15_15_per_label_and_disjoint() -> None:
    rows = _rows(400)
    split = split_rows(rows, seed=1)
    assert split.sizes() == {"train": 280, "validation": 60, "test": 60}
    for part in (split.train, split.validation, split.test):
        assert set(Counter(r["intent"] for r in part).values()) == {len(part) // 4}
    ids = [r["text"] for r in split.train + split.validation + split.test]
    assert len(ids) == len(set(ids)) == 400


def test_split_by_time_tests_on_the_newest_rows_of_each_label() -> None:
    split = split_rows(_rows(400), by_time=True)
    for label in ("i0", "i1", "i2", "i3"):
        train = [r["epoch"] for r in split.train if r["intent"] == label]
        val = [r["epoch"] for r in split.validation if r["intent"] == label]
        test = [r["epoch"] for r in split.test if r["intent"] == label]
        assert max(train) <= min(val) and max(val) <= min(test)


@pytest.mark.parametrize("by_time", [True, False])
def test_copies_of_a_text_never_straddle_two_splits(by_time: bool) -> None:
    # A log repeats messages: 60 texts, each logged 1-9 times over time; the test split must
    # not hold a text the model trained on word for word.
    rng = np.random.default_rng(3)
    rows = [
        {"text": f"t{t}", "intent": f"i{t % 3}", "epoch": float(rng.integers(10_000))}
        for t in range(60)
        for _ in range(1 + t % 9)
    ]
    split = split_rows(rows, by_time=by_time, seed=2)
    texts = [{r["text"] for r in part} for part in (split.train, split.validation, split.test)]
    assert not texts[0] & texts[1] and not texts[0] & texts[2] and not texts[1] & texts[2]
    assert sum(split.sizes().values()) == len(rows)
    assert split.validation and split.test


def test_data_without_repeats_splits_as_before_by_row() -> None:
    split = split_rows(_rows(403), seed=4)  # 403: uneven labels, the same row-level cut
    assert split.sizes() == {"train": 283, "validation": 60, "test": 60}


def test_kfold_is_stratified_and_covers_every_row_once() -> None:
    labels = [f"i{i % 4}" for i in range(100)] + ["rare"] * 2
    folds = kfold_indices(labels, k=5)
    held = np.concatenate([val for _, val in folds])
    assert sorted(held.tolist()) == list(range(100))  # the rare rows stay in training
    for train, val in folds:
        assert not set(train) & set(val)
        assert {100, 101} <= set(train.tolist())
        assert set(Counter(labels[i] for i in val).values()) == {5}


def test_kfold_keeps_copies_of_one_text_in_one_fold() -> None:
    texts = [f"t{i % 60}" for i in range(240)]  # every text four times
    labels = [f"i{(i % 60) % 4}" for i in range(240)]
    folds = kfold_indices(labels, k=5, groups=texts)
    held = np.concatenate([val for _, val in folds])
    assert sorted(held.tolist()) == list(range(240))
    for train, val in folds:
        assert not {texts[i] for i in train} & {texts[i] for i in val}
        assert set(Counter(labels[i] for i in val)) == {"i0", "i1", "i2", "i3"}


def test_kfold_can_hold_out_the_rare_labels_rows_too() -> None:
    labels = [f"i{i % 4}" for i in range(100)] + ["rare"] * 3
    texts = [str(i) for i in range(100)] + ["r", "r", "other"]
    folds = kfold_indices(labels, k=5, groups=texts, hold_out_every_row=True)
    held = np.concatenate([val for _, val in folds])
    assert sorted(held.tolist()) == list(range(103))  # every row once
    (copies,) = [val for _, val in folds if 100 in val]
    assert 101 in copies  # the rare label's copies share a fold
    for train, val in folds:
        assert not set(train) & set(val) and len(train) + len(val) == 103


def test_bad_fractions_are_refused() -> None:
    with pytest.raises(ValueError, match="summing to 1"):
        split_rows(_rows(10), (0.5, 0.2, 0.2))
