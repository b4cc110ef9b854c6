"""The simulator's hidden variables never reach what the policy sees.

A small simulation runs against a real server; every request body the simulated chatbot
sends and every decision context the server stores is searched for the customers' hidden
variables: the persona (hidden segment), the per-variant utilities (preference weights) and
the individual effects. The detector itself is checked on a planted leak, so the test can
fail.
"""

from __future__ import annotations

import math
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from tailorbot.api.server import EmbeddedServer
from tailorbot.client import Client
from tailorbot.runtime import Runtime
from tailorbot.sim import PERSONAS, Customer
from tailorbot.sim.demo import build_simulation
from tests.services.decisions.conftest import save_model, settings_for

HIDDEN_WORDS = re.compile(
    r"\b(persona|utility|utilities|individual_effects?|preferred_variant|"
    + "|".join(PERSONAS)
    + r")\b",
    re.IGNORECASE,
)


class RecordingClient(Client):
    """The real client, keeping every JSON body it sent and received."""

    def __init__(self, base_url: str) -> None:
        super().__init__(base_url)
        self.sent: list[Any] = []
        self.received: list[Any] = []
        self._lock = threading.Lock()

    def _call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        response = super()._call(method, path, **kwargs)
        with self._lock:
            self.sent.append(
                {"path": path, "params": kwargs.get("params"), "json": kwargs.get("json")}
            )
            if response.headers.get("content-type", "").startswith("application/json"):
                self.received.append({"path": path, "json": response.json()})
        return response


def leaves(value: Any) -> Iterator[Any]:
    """Every key and scalar inside a JSON-like value."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from leaves(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from leaves(item)
    else:
        yield value


def hidden_leaks(value: Any, customers: list[Customer]) -> list[str]:
    """The hidden variables of ``customers`` found anywhere in ``value``."""
    hidden_numbers = [
        x for c in customers for x in (*c.utilities, *c.individual_effects) if x not in (0.0, 1.0)
    ]
    found = []
    for leaf in leaves(value):
        if isinstance(leaf, str) and HIDDEN_WORDS.search(leaf):
            found.append(leaf)
        elif isinstance(leaf, float) and any(
            math.isclose(leaf, x, rel_tol=1e-6, abs_tol=1e-9) for x in hidden_numbers
        ):
            found.append(repr(leaf))
    return found


def test_no_hidden_variable_reaches_a_request_or_a_decision_context(tmp_path: Path) -> None:
    save_model(tmp_path)
    settings = settings_for(tmp_path, experiment_holdout=0.5)
    with EmbeddedServer(settings) as server, RecordingClient(server.url) as client:
        sim = build_simulation(client, settings, customers=15, seed=3)
        result = sim.run(60)
    customers = list(sim.population)
    assert len(result.contacts) == 60

    assert hidden_leaks(client.sent, customers) == []
    decision_ids = [
        body["json"]["decision_id"] for body in client.received if body["path"] == "/v1/personalize"
    ]
    assert len(decision_ids) == 60
    runtime = Runtime(settings)
    try:
        stored = [runtime.stores.decisions.get(d) for d in decision_ids]
    finally:
        runtime.stop()
    contexts = [record["context"] for record in stored if record is not None]
    assert len(contexts) == 60 and any(contexts)
    assert hidden_leaks(contexts, customers) == []
    # What the policy may see does arrive: the channel each customer writes from.
    by_user = {c.user_id: c for c in customers}
    for record in stored:
        assert record is not None
        channel = by_user[record["user_id"]].channel
        assert record["context"].get(f"channel_{channel}") == 1.0

    # The detector finds a planted leak of each kind.
    one = customers[0]
    assert hidden_leaks([{"attributes": {"segment": one.persona}}], customers)
    assert hidden_leaks({"x": one.individual_effects[1]}, customers)
    assert hidden_leaks({"weights": list(one.utilities)}, customers)
