"""No handler blocks the event loop: while a backend call stalls (a store whose ``get``
sleeps up to 3 s), ``/healthz`` on the same uvicorn server answers before the stall ends.

The check is causal, not a timing assert: the stalled call is released only after
``/healthz`` answered, so on a blocked loop ``/healthz`` could only answer after the stall
ran out. ``benchmarks/loop_stall.py`` measures the latency itself."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from tailorbot.api.offload import DecisionPool
from tailorbot.api.server import EmbeddedServer
from tailorbot.config import Settings
from tailorbot.store.base import Stores
from tests.api.support import message
from tests.helpers import wait_until
from tests.integrations.chatwoot_server import RecordingChatwoot
from tests.integrations.payloads import message_created
from tests.integrations.test_nlg import rasa_nlg_request
from tests.services.decisions.conftest import SEED, save_model

STALL_S = 3.0


class StallingStore:
    """A real store whose ``get`` (or, for a reader such as ``Stores.user_reader``, its call)
    stalls until released (at most ``STALL_S``): a backend that hangs. Every other call goes
    straight to the real store."""

    def __init__(self, inner: Any, stall_s: float = STALL_S) -> None:
        self.inner = inner
        self.stall_s = stall_s
        self.entered = threading.Event()
        self.entries = 0  # calls that reached the store
        self.released = threading.Event()
        self.stalled_through = False  # True once a stall ran out without a release
        self._lock = threading.Lock()

    def get(self, *args: Any, **kwargs: Any) -> Any:
        self._stall()
        return self.inner.get(*args, **kwargs)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self._stall()
        return self.inner(*args, **kwargs)

    def _stall(self) -> None:
        with self._lock:
            self.entries += 1
        self.entered.set()
        if not self.released.wait(self.stall_s):
            self.stalled_through = True

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


@contextmanager
def stalled(
    server: EmbeddedServer, which: str, stall_s: float = STALL_S
) -> Iterator[StallingStore]:
    stores: Stores = server.app.state.runtime.stores
    real = getattr(stores, which)
    stall = StallingStore(real, stall_s)
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
        "user_reader",  # a decision reads its user in one call
        lambda url: httpx.post(
            url + "/v1/personalize",
            json={"user_id": "u1", "session_id": "s1", "message": "my card has not arrived"},
            timeout=30,
        ),
    ),
    "features": (  # read as a decision reads its user
        "user_reader",
        lambda url: httpx.get(url + "/v1/users/u1/features", timeout=30),
    ),
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


# --- the integration routes: on the same bounded pool -------------------------------------

BOUND = 2  # blocking_threads of the server below


@pytest.fixture(scope="module")
def bounded_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedServer]:
    """Two blocking threads; Chatwoot configured (a recording server stands in for its API,
    which gets the replies in the background) and a Rasa slot mapped to the profile."""
    data_dir = tmp_path_factory.mktemp("bounded")
    save_model(data_dir)
    with RecordingChatwoot() as chatwoot:
        settings = Settings.load(
            data_dir=data_dir,
            seed=SEED,
            run_worker_in_server=False,
            blocking_threads=BOUND,
            chatwoot_url=chatwoot.url,
            chatwoot_token="bot-token",
            rasa_slot_attributes=("plan=attributes.plan",),
        )
        with EmbeddedServer(settings) as running:
            yield running


def _rasa_slot(url: str, user: str) -> httpx.Response:
    event = {"sender_id": user, "event": "slot", "timestamp": time.time(), "name": "plan",
             "value": "gold"}  # fmt: skip
    return httpx.post(url + "/v1/integrations/rasa/events", json=[event], timeout=60)


def _rasa_nlg(url: str, user: str) -> httpx.Response:
    body = rasa_nlg_request()
    body["tracker"]["sender_id"] = user  # type: ignore[index]
    return httpx.post(url + "/v1/integrations/rasa/nlg", json=body, timeout=60)


def _chatwoot(url: str, user: str) -> httpx.Response:
    contact = int(user.rsplit("-", 1)[1])
    payload = message_created("my card has not arrived", contact_id=contact, message_id=contact)
    return httpx.post(url + "/v1/integrations/chatwoot/webhook", json=payload, timeout=60)


# Each reads the customer's profile in its blocking part: a profile update from the profile
# store, a decision (Rasa's NLG) with the store's one read of its user.
INTEGRATION_CALLS: dict[str, tuple[Callable[[str, str], httpx.Response], str]] = {
    "rasa-events": (_rasa_slot, "profiles"),
    "rasa-nlg": (_rasa_nlg, "user_reader"),
    "chatwoot-webhook": (_chatwoot, "profiles"),
}


@pytest.mark.parametrize("name", sorted(INTEGRATION_CALLS))
def test_integration_routes_use_the_bounded_pool(bounded_server: EmbeddedServer, name: str) -> None:
    """With the profile store stalled, ``BOUND + 1`` calls of an integration route: ``BOUND``
    of them hold the pool's threads in the store, the one beyond waits for a thread (on
    Starlette's own pool of 40 it would reach the store too), and ``/healthz`` answers."""
    (call, which), url = INTEGRATION_CALLS[name], bounded_server.url
    limiter = bounded_server.app.state.blocking
    assert call(url, "warm-1").status_code < 500  # the decision service loaded, imports done
    # released by the test; the long bound only keeps a broken test from hanging
    with stalled(bounded_server, which, stall_s=60) as stall:
        started = [_in_thread(lambda i=i: call(url, f"{name}-{100 + i}")) for i in range(BOUND + 1)]

        def one_waits() -> bool:
            return stall.entries >= BOUND and limiter.statistics().tasks_waiting >= 1

        wait_until(one_waits, f"{BOUND} calls in the store and one waiting for a thread", 30)
        health = httpx.get(url + "/healthz", timeout=30)
        assert health.status_code == 200
        assert stall.entries == BOUND, "a call beyond blocking_threads reached the store"
        stall.released.set()
        for thread, _ in started:
            thread.join(60)
    assert not stall.stalled_through
    for _, answers in started:
        assert answers and answers[0].status_code < 500, answers


def test_threads_are_handed_work_in_one_place() -> None:
    """api/offload.py is the only module of the API that hands work to a thread pool."""
    import tailorbot.api

    root = Path(tailorbot.api.__file__).parent
    others = [
        path.relative_to(root).as_posix()
        for path in sorted(root.rglob("*.py"))
        if path.name != "offload.py"
        and any(name in path.read_text() for name in ("run_in_threadpool", "to_thread"))
    ]
    assert others == []


# --- decisions: at most decision_threads at once, the rest wait in the pool's queue ----------


def test_at_most_decision_threads_decisions_run_at_once(server: EmbeddedServer) -> None:
    # The server runs the pool's default size (1 on its embedded store): with the profile
    # store stalled, that many decisions reach it and the others wait in the pool's queue.
    limit = server.app.state.decisions.threads
    assert limit == server.app.state.settings.resolved_decision_threads() == 1
    which, call = CALLS["personalize"]
    with stalled(server, which, stall_s=30) as stall:
        threads = [_in_thread(lambda: call(server.url)) for _ in range(limit + 3)]
        pool = server.app.state.decisions
        wait_until(lambda: pool.statistics().waiting == 3, "3 decisions queued", 30)
        assert stall.entries == limit == pool.statistics().running
        stall.released.set()
        for thread, _ in threads:
            thread.join(30)
    assert [answers[0].status_code for _, answers in threads] == [200] * (limit + 3)


# --- decision_threads = 0: decisions on the event loop, no hand-over ---------------------------


def test_a_pool_of_no_threads_calls_on_the_loop() -> None:
    async def main() -> tuple[int, int, int]:
        pool = DecisionPool(0)
        pool.start(asyncio.get_running_loop())
        try:
            ran_in = await pool.run(threading.get_ident)
            return ran_in, threading.get_ident(), len(threading.enumerate())
        finally:
            pool.close()

    before = len(threading.enumerate())
    ran_in, loop_thread, threads = asyncio.run(main())
    assert ran_in == loop_thread
    assert threads == before  # the pool started none


def test_zero_decision_threads_decide_on_the_event_loop(tmp_path: Path) -> None:
    save_model(tmp_path)
    settings = Settings.load(
        data_dir=tmp_path, seed=SEED, run_worker_in_server=False, decision_threads=0
    )
    with EmbeddedServer(settings) as running:
        stores: Stores = running.app.state.runtime.stores
        real = stores.user_reader
        readers: list[str] = []

        def reader(user_id: str) -> Any:
            readers.append(threading.current_thread().name)
            return real(user_id)  # type: ignore[misc]

        object.__setattr__(stores, "user_reader", reader)
        try:
            _, call = CALLS["personalize"]
            answers = [call(running.url) for _ in range(3)]
        finally:
            object.__setattr__(stores, "user_reader", real)
        pool = running.app.state.decisions
    assert [a.status_code for a in answers] == [200] * 3, answers[0].text
    assert readers == ["tailorbot-api"] * 3  # EmbeddedServer's event loop thread
    assert pool.threads == 0 and pool.statistics() == (0, 0)
