"""The runnable examples in the docstrings of the integrations and the KB modules."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = (
    "tailorbot.integrations.rasa",
    "tailorbot.integrations.nlg",
    "tailorbot.integrations.chatwoot",
    "tailorbot.integrations.openai_tools",
    "tailorbot.integrations.profiles",
    "tailorbot.kb.render",
    "tailorbot.kb.manifest",
    "tailorbot.kb.model",
    "tailorbot.kb.validate",
    "tailorbot.kb.repository",
)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name))
    assert result.attempted > 0 and result.failed == 0
