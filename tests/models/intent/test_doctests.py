"""The docstring examples of the intent package (and of the conversation rules) run here."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = (
    "base",
    "dataset",
    "evaluation",
    "fallback",
    "followup",
    "hybrid",
    "language",
    "routed",
    "spelling",
    "static_embeddings",
    "tfidf",
    "training",
)


@pytest.mark.parametrize(
    "name",
    [f"tailorbot.models.intent.{m}" for m in MODULES]
    + ["tailorbot.services.decisions.conversation"],
)
def test_doctests(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name))
    assert result.failed == 0 and result.attempted > 0
