"""The telecom example KB as a writable seed folder, shared by the live-KB tests."""

from __future__ import annotations

import shutil
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "telecom" / "kb"
ARTICLE = {"title": "eSIM", "body": "Scan the QR code.", "intents": ["sim_activation"]}


def example_copy(folder: Path) -> Path:
    """A copy of the example KB at ``folder`` (tests edit it as a deploy would)."""
    shutil.copytree(EXAMPLE, folder)
    return folder
