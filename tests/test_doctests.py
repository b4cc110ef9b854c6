"""Modules whose docstring examples document their API must keep having some.

The examples themselves run once, with the rest of the suite (``--doctest-modules`` over
``src`` in pyproject.toml); this only checks that none of these modules lost its examples.
"""

from __future__ import annotations

import doctest
import importlib

import pytest

INTENT = (
    "base", "dataset", "evaluation", "fallback", "followup", "hybrid", "language", "routed",
    "spelling", "static_embeddings", "tfidf", "training",
)  # fmt: skip
PIPELINE = ("audit", "cf", "crossval", "judge", "reward", "routed", "search", "trainer")
MODULES = (
    *(f"tailorbot.models.intent.{name}" for name in INTENT),
    *(f"tailorbot.models.pipeline.{name}" for name in PIPELINE),
    "tailorbot.services.decisions.conversation",
    "tailorbot.integrations.rasa",
    "tailorbot.integrations.nlg",
    "tailorbot.integrations.rasa_domain",
    "tailorbot.integrations.chatwoot",
    "tailorbot.integrations.openai_tools",
    "tailorbot.integrations.profiles",
    "tailorbot.kb.render",
    "tailorbot.kb.manifest",
    "tailorbot.kb.model",
    "tailorbot.kb.validate",
    "tailorbot.kb.repository",
    "tailorbot.metrics",
    "tailorbot.store.watch",
    "tailorbot.models.drift",
    "tailorbot.api.dashboard",
    "tailorbot.telemetry.logs",
    "tailorbot.telemetry.tracing",
)


@pytest.mark.parametrize("name", MODULES)
def test_the_module_has_docstring_examples(name: str) -> None:
    tests = doctest.DocTestFinder().find(importlib.import_module(name))
    assert sum(len(t.examples) for t in tests) > 0
