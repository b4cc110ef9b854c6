"""No handler blocks the event loop: while a backend call stalls (a store whose ``get``
sleeps up to 3 s), ``/healthz`` on the same uvicorn server answers before the stall ends.

The check is causal, not a timing assert: the stalled call is released only after
``/healthz`` answered, so on a blocked loop ``/healthz`` could only answer after the stall
ran out. ``benchmarks/loop_stall.py`` measures the latency itself."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest

from tailorbot.api.server import EmbeddedServer
from tailorbot.config import Settings
from tailorbot.store.base import Stores
from tests.api.support import message
from tests.services.decisions.conftest import SEED, save_model

STALL_S = 3.0


class StallingStore:
    """A real store whose ``get`` stalls until released (at most ``STALL_S``): a backend
    that hangs. Every other call goes straight to the real store."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.entered = threading.Event()
        self.released = threading.Event()
        self.stalled_through = False  # True once a stall ran out without a release

    def get(self, *args: Any, **kwargs: Any) -> Any:
        self.entered.set()
        self.stalled_through = not self.released.wait(STALL_S)
        return self.inner.get(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


@contextmanager
def stalled(server: EmbeddedServer, which: str) -> Iterator[StallingStore]:
    stores: Stores = server.app.state.runtime.stores
    real = getattr(stores, which)
    stall = StallingStore(real)
    # Stores is frozen for the application; the test swaps one store to inject the fault.
    object.__setattr__(stores, which, stall)
    try:
        yield stall
    finally:
        stall.released.set()
        object.__setattr__(stores, which, real)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedServer]:
    data_dir = tmp_path_factory.mktemp("loop")
    save_model(data_dir)
    settings = Settings.load(data_dir=data_dir, seed=SEED, run_worker_in_server=False)
    with EmbeddedServer(settings) as running:
        yield running


def _in_thread(call: Callable[[], httpx.Response]) -> tuple[threading.Thread, list]:
    answers: list[httpx.Response] = []
    thread = threading.Thread(target=lambda: answers.append(call()), daemon=True)
    thread.start()
    return thread, answers


CALLS: dict[str, tuple[str, Callable[[str], httpx.Response]]] = {
    "personalize": (
        "profiles",
        lambda url: httpx.post(
            url + "/v1/personalize",
            json={"user_id": "u1", "session_id": "s1", "message": "my card has not arrived"},
            timeout=30,
        ),
    ),
    "features": ("features", lambda url: httpx.get(url + "/v1/users/u1/features", timeout=30)),
    "feedback": (
        "decisions",
        lambda url: httpx.post(
            url + "/v1/feedback", json={"decision_id": "d-unknown", "rating": 4}, timeout=30
        ),
    ),
}


@pytest.mark.parametrize("name", sorted(CALLS))
def test_healthz_answers_while_a_backend_call_stalls(server: EmbeddedServer, name: str) -> None:
    which, call = CALLS[name]
    with stalled(server, which) as stall:
        thread, answers = _in_thread(lambda: call(server.url))
        assert stall.entered.wait(30), f"{name} never reached the store"
        health = httpx.get(server.url + "/healthz", timeout=30)
        assert health.status_code == 200
        assert not stall.stalled_through, "/healthz only answered once the stall ran out"
        stall.released.set()
        thread.join(30)
    assert answers and answers[0].status_code < 500, answers


def test_events_are_ingested_while_personalize_stalls(server: EmbeddedServer) -> None:
    which, call = CALLS["personalize"]
    with stalled(server, which) as stall:
        thread, _ = _in_thread(lambda: call(server.url))
        assert stall.entered.wait(30)
        response = httpx.post(server.url + "/v1/events", json=message("u2"), timeout=30)
        assert response.status_code == 202
        assert not stall.stalled_through
        stall.released.set()
        thread.join(30)
