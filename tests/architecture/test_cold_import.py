"""Importing the API and the CLI loads none of the heavy learning libraries: a server process
starts without paying for scikit-learn and SciPy (about a second), and loads them when a model
is first trained or evaluated (``_lazy.py``). Run in a fresh interpreter: this session has them
loaded already."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("sklearn", "scipy", "lightgbm", "optuna", "pandas")
PROBE = f"""
import sys
import tailorbot.api.app, tailorbot.cli, tailorbot.runtime
print(",".join(m for m in {HEAVY!r} if m in sys.modules))
"""


def test_the_api_and_the_cli_import_no_heavy_library() -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=120, check=True
    )
    assert done.stdout.strip() == "", f"imported at start-up: {done.stdout.strip()}"
