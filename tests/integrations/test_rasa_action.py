"""The Rasa custom action of examples/rasa/ against a real tailorbot server.

The action's logic (`answer`, `rate`) is plain Python using tailorbot's client; the Rasa SDK
classes around it only move the tracker's fields in and the reply out."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from tailorbot.api.server import EmbeddedServer
from tailorbot.client import Client
from tests.services.decisions.conftest import OUT_OF_SCOPE_MESSAGES, save_model, settings_for

ACTIONS = Path(__file__).resolve().parents[2] / "examples" / "rasa" / "actions" / "actions.py"


@pytest.fixture(scope="module")
def actions() -> ModuleType:
    spec = importlib.util.spec_from_file_location("rasa_example_actions", ACTIONS)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    data_dir = tmp_path_factory.mktemp("rasa-action")
    save_model(data_dir)
    with EmbeddedServer(settings_for(data_dir)) as running:
        yield running.url


def test_answer_and_rate(actions: ModuleType, server: str) -> None:
    with Client(server) as client:
        client.put_user("c-42", {"name": "Ada"})
        reply = actions.answer(client, "c-42", "my new card has still not arrived", "rest")
        assert "Ada" in reply.text and not reply.handoff
        assert reply.decision_id
        assert reply.links and reply.links[0]["url"].startswith("https://")
        assert actions.rate(client, reply.decision_id, 5.0)
        assert not actions.rate(client, None, 5)  # nothing to rate
        fallback = actions.answer(client, "c-42", OUT_OF_SCOPE_MESSAGES[1])
        assert fallback.handoff


def test_an_unreachable_tailorbot_hands_over(actions: ModuleType) -> None:
    with Client("http://127.0.0.1:9", timeout=0.5) as client:
        reply = actions.answer(client, "c-42", "hello")
    assert reply.handoff and reply.decision_id is None and reply.text == actions.SORRY
