from __future__ import annotations

import json
from pathlib import Path

import pytest

from tailorbot.models.intent import (
    OUT_OF_SCOPE,
    DatasetError,
    IntentDataset,
    bundled_dataset,
    default_dataset,
    load_dataset,
    normalize_label,
)
from tailorbot.models.intent.dataset import BUILTIN_INTENTS


def test_csv_with_intent_or_category_header(tmp_path: Path) -> None:
    a = tmp_path / "a.csv"
    a.write_text('text,intent\n"where, oh where is my card",card_arrival\nhi,out_of_scope\n')
    b = tmp_path / "b.csv"
    b.write_text("text,category\nwhere is my card,card_arrival\n")
    da, db = load_dataset(a), load_dataset(b)
    assert da.texts == ("where, oh where is my card", "hi")
    assert da.labels == ("card_arrival", OUT_OF_SCOPE)
    assert da.n_out_of_scope == 1
    assert db.labels == ("card_arrival",)


def test_jsonl(tmp_path: Path) -> None:
    path = tmp_path / "rows.jsonl"
    rows = [{"text": "where is my card", "intent": "card_arrival"}, {"text": "hey", "intent": "x"}]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n\n")
    data = load_dataset(path)
    assert data.texts == ("where is my card", "hey")
    assert data.labels == ("card_arrival", "x")


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("a.txt", "text,intent\nx,y\n", "unknown format '.txt'"),
        ("a.csv", "", "empty file"),
        ("a.csv", "text,intent\n", "no rows"),
        ("a.csv", "message,label\nhello,greet\n", "missing columns"),
        ("a.csv", "text,intent\n,card_arrival\n", "a.csv:2: empty text"),
        ("a.csv", "text,intent\nhello,\n", "a.csv:2: empty or unusable intent"),
        ("a.csv", "text,intent\nhello,Greet\nhi,greet\n", "both normalize to 'greet'"),
        ("a.jsonl", '{"text": "x", "intent": "y"}\nnot json\n', "a.jsonl:2: invalid JSON"),
        ("a.jsonl", '{"text": "x"}\n', "a.jsonl:1: missing field"),
        ("a.jsonl", '["x", "y"]\n', "expected a JSON object"),
        ("a.jsonl", '{"text": 3, "intent": "y"}\n', "must be strings"),
    ],
)
def test_bad_files_raise_clear_errors(
    tmp_path: Path, name: str, content: str, message: str
) -> None:
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(DatasetError, match=message):
        load_dataset(path)


def test_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="no such file"):
        load_dataset(tmp_path / "nope.csv")
    with pytest.raises(DatasetError, match="not a file"):
        load_dataset(tmp_path)


def test_non_utf8_file(tmp_path: Path) -> None:
    path = tmp_path / "latin.csv"
    path.write_bytes("text,intent\ncaf\xe9,x\n".encode("latin-1"))
    with pytest.raises(DatasetError, match="not UTF-8"):
        load_dataset(path)


def test_labels_become_identifiers() -> None:
    assert normalize_label("reverted_card_payment?") == "reverted_card_payment"
    assert normalize_label(" Billing Issue ") == "billing_issue"
    assert normalize_label("a--b.c:d@e") == "a--b.c:d@e"
    assert normalize_label("???") == ""


def test_bundled_banking77_is_complete_and_normalized() -> None:
    train, test = bundled_dataset("banking77", "train"), bundled_dataset("banking77", "test")
    assert (len(train), len(test)) == (10003, 3080)
    assert len(set(train.labels)) == 77
    assert set(test.labels) == set(train.labels)
    assert "reverted_card_payment" in train.labels
    assert train.renamed == {
        "Refund_not_showing_up": "refund_not_showing_up",
        "reverted_card_payment?": "reverted_card_payment",
    }


def test_bundled_out_of_scope_split_is_disjoint_and_stable() -> None:
    train, test = bundled_dataset("out_of_scope", "train"), bundled_dataset("out_of_scope", "test")
    assert len(train) + len(test) >= 400
    assert set(train.labels) == set(test.labels) == {OUT_OF_SCOPE}
    assert not set(train.texts) & set(test.texts)
    assert 0.2 < len(test) / (len(train) + len(test)) < 0.4
    assert bundled_dataset("out_of_scope", "test").texts == test.texts


def test_default_dataset_and_hash() -> None:
    data = default_dataset("test")
    builtin = bundled_dataset("builtin_intents", "test")
    assert len(data) == 3080 + len(builtin) + len(bundled_dataset("out_of_scope", "test"))
    assert data.content_hash() == default_dataset("test").content_hash()
    other = IntentDataset(data.texts[:-1], data.labels[:-1])
    assert other.content_hash() != data.content_hash()


def test_unknown_bundled_name_or_split() -> None:
    with pytest.raises(ValueError, match="unknown bundled"):
        bundled_dataset("clinc", "train")
    with pytest.raises(ValueError, match="split"):
        bundled_dataset("banking77", "dev")


def test_builtin_intents_are_all_present_and_can_be_switched_off() -> None:
    train = bundled_dataset("builtin_intents", "train")
    test = bundled_dataset("builtin_intents", "test")
    assert set(train.labels) == set(test.labels) == set(BUILTIN_INTENTS)
    assert not set(train.texts) & set(test.texts)
    assert len(train) + len(test) >= 300
    only_handoff = default_dataset("train", builtin_intents=["human_handoff"])
    assert "greeting" not in only_handoff.labels and "human_handoff" in only_handoff.labels
    greeting = train.texts[train.labels.index("greeting")]
    assert only_handoff.labels[only_handoff.texts.index(greeting)] == OUT_OF_SCOPE
    with pytest.raises(ValueError, match="unknown built-in intents"):
        default_dataset("train", builtin_intents=["smalltalk"])
