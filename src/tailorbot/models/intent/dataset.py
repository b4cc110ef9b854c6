"""Labelled intent data: reading CSV/JSONL files, the bundled data sets, label names.

Accepted files:

* CSV with a header holding ``text`` and ``intent`` (or Banking77's ``category``);
* JSONL (``.jsonl``/``.ndjson``), one ``{"text": ..., "intent": ...}`` object per line.

Rows labelled ``out_of_scope`` are negatives. Labels are normalized to identifiers (lower
case, runs of other characters turned into ``_``), so they are valid event intents:
Banking77's ``reverted_card_payment?`` becomes ``reverted_card_payment``.

>>> normalize_label("Refund_not_showing_up"), normalize_label("reverted_card_payment?")
('refund_not_showing_up', 'reverted_card_payment')
>>> len(bundled_dataset("banking77", "test")), bundled_dataset("out_of_scope", "test").labels[0]
(3080, 'out_of_scope')

The built-in conversational intents (``human_handoff``, ``greeting``, ``goodbye``, ``thanks``,
``affirm``, ``deny``; rows written for this project) join Banking77 in :func:`default_dataset`;
an intent switched off there is trained as ``out_of_scope`` instead, so ``hi`` then falls back:

>>> sorted(set(default_dataset("test", builtin_intents=("greeting",)).labels) - set(
...     bundled_dataset("banking77", "test").labels))
['greeting', 'out_of_scope']
"""

from __future__ import annotations

import csv
import hashlib
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from tailorbot.config import BUILTIN_INTENTS
from tailorbot.models.intent.base import OUT_OF_SCOPE

TEXT_COLUMN = "text"
LABEL_COLUMNS = ("intent", "category")
CSV_SUFFIXES = (".csv",)
JSONL_SUFFIXES = (".jsonl", ".ndjson")
OOS_TEST_SHARE = 0.3  # of the bundled out-of-scope rows, chosen by a hash of the text
BUNDLED = ("banking77", "out_of_scope", "builtin_intents")
MISSING_FIELDS = "missing field; each object needs 'text' and 'intent'"

_NOT_IDENTIFIER = re.compile(r"[^a-z0-9_.:@\-]+")


class DatasetError(ValueError):
    """A data file that cannot be used, with a message naming the file and the problem."""


@dataclass(frozen=True)
class IntentDataset:
    """Texts and their (normalized) labels; ``renamed`` maps original label -> normalized."""

    texts: tuple[str, ...]
    labels: tuple[str, ...]
    source: str = ""
    renamed: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if len(self.texts) != len(self.labels):
            raise ValueError(f"{len(self.texts)} texts but {len(self.labels)} labels")

    def __len__(self) -> int:
        return len(self.texts)

    def __add__(self, other: IntentDataset) -> IntentDataset:
        return IntentDataset(
            self.texts + other.texts,
            self.labels + other.labels,
            " + ".join(s for s in (self.source, other.source) if s),
            {**self.renamed, **other.renamed},
        )

    def subset(self, indices: Iterable[int]) -> IntentDataset:
        idx = list(indices)
        return IntentDataset(
            tuple(self.texts[i] for i in idx),
            tuple(self.labels[i] for i in idx),
            self.source,
            self.renamed,
        )

    @property
    def n_out_of_scope(self) -> int:
        return sum(1 for label in self.labels if label == OUT_OF_SCOPE)

    def content_hash(self) -> str:
        """SHA-256 of the rows in order (text, tab, label, newline): the training-data hash."""
        digest = hashlib.sha256()
        for text, label in zip(self.texts, self.labels, strict=True):
            digest.update(f"{text}\t{label}\n".encode())
        return digest.hexdigest()


def normalize_label(label: str) -> str:
    """Lower case; runs of characters outside ``[a-z0-9_.:@-]`` become one ``_``."""
    return _NOT_IDENTIFIER.sub("_", label.strip().lower()).strip("_")


def load_dataset(path: str | Path) -> IntentDataset:
    """Read a CSV or JSONL file of labelled texts; raises :class:`DatasetError` when unusable."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"{path}: {'not a file' if path.exists() else 'no such file'}")
    suffix = path.suffix.lower()
    if suffix in CSV_SUFFIXES:
        rows = _csv_rows(path)
    elif suffix in JSONL_SUFFIXES:
        rows = _jsonl_rows(path)
    else:
        known = ", ".join(CSV_SUFFIXES + JSONL_SUFFIXES)
        raise DatasetError(
            f"{path}: unknown format {suffix or '(no suffix)'!r}; use one of {known}"
        )
    return _build(rows, str(path))


def bundled_dataset(name: str, split: str) -> IntentDataset:
    """A bundled data set (one of ``BUNDLED``), split ``train`` or ``test``.

    The out-of-scope and built-in rows are split by a hash of their text (``OOS_TEST_SHARE`` to
    test), so the split never changes when rows are added elsewhere in the file.
    """
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    data = resources.files("tailorbot").joinpath("data")
    if name == "banking77":
        with resources.as_file(data.joinpath("banking77", f"{split}.csv")) as path:
            dataset = load_dataset(path)
        return IntentDataset(dataset.texts, dataset.labels, f"banking77/{split}", dataset.renamed)
    if name in ("out_of_scope", "builtin_intents"):
        with resources.as_file(data.joinpath(f"{name}.csv")) as path:
            dataset = load_dataset(path)
        keep = [
            i for i, text in enumerate(dataset.texts) if _in_test_share(text) == (split == "test")
        ]
        return IntentDataset(
            tuple(dataset.texts[i] for i in keep),
            tuple(dataset.labels[i] for i in keep),
            f"{name}/{split}",
        )
    raise ValueError(f"unknown bundled data set {name!r}; known: {', '.join(BUNDLED)}")


def default_dataset(split: str, builtin_intents: Iterable[str] = BUILTIN_INTENTS) -> IntentDataset:
    """Banking77, the built-in intents and the out-of-scope rows, all of the same split.

    Built-in intents not in ``builtin_intents`` are relabelled ``out_of_scope``.
    """
    enabled = set(builtin_intents)
    unknown = sorted(enabled - set(BUILTIN_INTENTS))
    if unknown:
        raise ValueError(f"unknown built-in intents {unknown}; known: {list(BUILTIN_INTENTS)}")
    builtin = bundled_dataset("builtin_intents", split)
    relabelled = tuple(label if label in enabled else OUT_OF_SCOPE for label in builtin.labels)
    builtin = IntentDataset(builtin.texts, relabelled, builtin.source)
    return bundled_dataset("banking77", split) + builtin + bundled_dataset("out_of_scope", split)


def _in_test_share(text: str) -> bool:
    bucket = int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "big") / 2**32
    return bucket < OOS_TEST_SHARE


def _csv_rows(path: Path) -> Iterator[tuple[int, str, str]]:
    try:
        # utf-8-sig: Excel's "CSV UTF-8" starts with a byte order mark
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            header = [h.strip() for h in reader.fieldnames or []]
            if not header:
                raise DatasetError(f"{path}: empty file (expected a header row)")
            reader.fieldnames = header
            label_column = next((c for c in LABEL_COLUMNS if c in header), None)
            if TEXT_COLUMN not in header or label_column is None:
                raise DatasetError(
                    f"{path}: missing columns; the header needs 'text' and 'intent' "
                    f"(or 'category'), found {header}"
                )
            for row in reader:
                yield reader.line_num, row.get(TEXT_COLUMN) or "", row.get(label_column) or ""
    except UnicodeDecodeError as exc:
        raise DatasetError(f"{path}: not UTF-8 text ({exc.reason})") from None
    except csv.Error as exc:
        raise DatasetError(f"{path}: bad CSV: {exc}") from None


def read_jsonl(path: str | Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """Each object of a JSONL file with its line number, blank lines skipped; the one reader
    of JSONL data files. A :class:`DatasetError` names the file, the line and the reason."""
    try:
        with Path(path).open(encoding="utf-8") as handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise DatasetError(f"{path}:{number}: invalid JSON: {exc.msg}") from None
                if not isinstance(obj, dict):
                    raise DatasetError(f"{path}:{number}: expected a JSON object per line")
                yield number, obj
    except UnicodeDecodeError as exc:
        raise DatasetError(f"{path}: not UTF-8 text ({exc.reason})") from None


def _jsonl_rows(path: Path) -> Iterator[tuple[int, str, str]]:
    for number, obj in read_jsonl(path):
        label = next((obj[c] for c in LABEL_COLUMNS if c in obj), None)
        if TEXT_COLUMN not in obj or label is None:
            raise DatasetError(f"{path}:{number}: {MISSING_FIELDS}")
        if not isinstance(obj[TEXT_COLUMN], str) or not isinstance(label, str):
            raise DatasetError(f"{path}:{number}: 'text' and 'intent' must be strings")
        yield number, obj[TEXT_COLUMN], label


def _build(rows: Iterable[tuple[int, str, str]], source: str) -> IntentDataset:
    texts: list[str] = []
    labels: list[str] = []
    renamed: dict[str, str] = {}
    origin: dict[str, str] = {}  # normalized label -> the first original spelling
    for line, text, raw_label in rows:
        text = text.strip()
        if not text:
            raise DatasetError(f"{source}:{line}: empty text")
        label = normalize_label(raw_label)
        if not label:
            raise DatasetError(f"{source}:{line}: empty or unusable intent {raw_label!r}")
        first = origin.setdefault(label, raw_label)
        if first != raw_label:
            raise DatasetError(
                f"{source}:{line}: intents {first!r} and {raw_label!r} both normalize to {label!r}"
            )
        if label != raw_label:
            renamed[raw_label] = label
        texts.append(text)
        labels.append(label)
    if not texts:
        raise DatasetError(f"{source}: no rows")
    return IntentDataset(tuple(texts), tuple(labels), source, renamed)
