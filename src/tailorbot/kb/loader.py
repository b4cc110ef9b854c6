"""Load a knowledge base (validated) and the label sets it is checked against.

>>> kb = load_kb(default_kb_dir(), labels=read_labels(default_labels_file()))
>>> len(kb.intents()) >= 77, kb.template_for("card_arrival") is not None
(True, True)
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from importlib import resources
from pathlib import Path

from tailorbot.kb.model import KnowledgeBase
from tailorbot.kb.validate import KBIssue, check_kb


class KBError(ValueError):
    """A knowledge base with errors; ``issues`` lists them (``file: field: reason``)."""

    def __init__(self, issues: list[KBIssue]) -> None:
        self.issues = issues
        shown = "\n  ".join(str(issue) for issue in issues[:20])
        more = f"\n  ... and {len(issues) - 20} more" if len(issues) > 20 else ""
        super().__init__(f"knowledge base has {len(issues)} error(s):\n  {shown}{more}")


def load_kb(directory: str | Path, labels: Iterable[str] | None = None) -> KnowledgeBase:
    """The validated KB in ``directory``; raises :class:`KBError` listing every problem."""
    report = check_kb(directory, labels)
    if report.kb is None:
        raise KBError(report.errors)
    return report.kb


def default_kb_dir() -> Path:
    """The demo KB shipped with tailorbot (Tailor Bank, the 77 Banking77 intents)."""
    return Path(str(resources.files("tailorbot").joinpath("data", "kb")))


def default_labels_file() -> Path:
    """Banking77's intent names, shipped with tailorbot."""
    return Path(str(resources.files("tailorbot").joinpath("data", "banking77", "categories.json")))


def read_labels(path: str | Path) -> list[str]:
    """Intent names from a JSON list or a text file (one per line), normalized like training
    data (``reverted_card_payment?`` -> ``reverted_card_payment``)."""
    from tailorbot.models.intent.dataset import normalize_label

    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: cannot read labels: {exc}") from None
    if path.suffix.lower() == ".json":
        try:
            names = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}: invalid JSON: {exc.msg}") from None
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise ValueError(f"{path}: expected a JSON list of intent names")
    else:
        names = [line for line in text.splitlines() if line.strip() and not line.startswith("#")]
    labels = [normalize_label(n) for n in names]
    if not labels or not all(labels):
        raise ValueError(f"{path}: no usable intent names")
    return labels
