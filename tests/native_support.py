"""The compiled extension as the tests of its loops see it: their tests skip where it was not
built, except under CI=true, which requires it (tests/test_native.py checks the build)."""

from __future__ import annotations

import os

import pytest

from tailorbot.compiled import native

loops = native()
needs_build = pytest.mark.skipif(
    loops is None and os.environ.get("CI") != "true",
    reason="the extension is not built here (required under CI=true)",
)
