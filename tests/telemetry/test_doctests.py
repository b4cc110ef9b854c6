"""The docstring examples of the observability modules run (they document the API)."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = (
    "tailorbot.metrics",
    "tailorbot.models.drift",
    "tailorbot.api.dashboard",
    "tailorbot.telemetry.logs",
    "tailorbot.telemetry.tracing",
)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
