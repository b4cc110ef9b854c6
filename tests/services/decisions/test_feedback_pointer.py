"""Feedback on a record of the decision store that is no decision (the Chatwoot bot's
conversation pointer, ``chatwoot:last:<session>``) is a 404 like an unknown id, not a 500."""

from __future__ import annotations

from pathlib import Path

import pytest

from tailorbot.errors import NotFound
from tailorbot.integrations.chatwoot_bot import POINTER_PREFIX
from tailorbot.services.decisions.service import DecisionService
from tests.api.conftest import make_client
from tests.services.decisions.conftest import SEED, runtime_of, save_model, tell

POINTER_ID = POINTER_PREFIX + "chatwoot-1-91"
POINTER = {"decision_id": "d-91", "message_id": 7, "handed_off": False, "pointer": True}


def test_feedback_on_a_pointer_is_not_found(service: DecisionService) -> None:
    decisions = runtime_of(service).stores.decisions
    decisions.put(POINTER_ID, "chatwoot-91", POINTER)
    with pytest.raises(NotFound):
        tell(service, POINTER_ID, rating=5)
    assert decisions.get(POINTER_ID) == POINTER  # nothing marked on it


def test_feedback_on_a_pointer_over_http_is_a_404(tmp_path: Path) -> None:
    save_model(tmp_path)
    with make_client(tmp_path, seed=SEED, run_worker_in_server=False) as client:
        client.app.state.runtime.stores.decisions.put(POINTER_ID, "chatwoot-91", POINTER)
        answer = client.post("/v1/feedback", json={"decision_id": POINTER_ID, "rating": 5})
    assert answer.status_code == 404, answer.text
