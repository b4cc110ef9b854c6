"""A Redis outage under a running API: 503 with Retry-After while Redis is gone or stalled,
recovery without restarting the app, and every accepted event applied exactly once.

Each test starts its own ``redis-server`` on a free port (the shared one on 6379 is never
stopped) and serves the real app over HTTP from a thread of the test process.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import redis

from tailorbot.api.server import EmbeddedServer
from tailorbot.config import Settings
from tailorbot.log import EventLog, open_log
from tailorbot.services import ingestion as ingestion_module
from tailorbot.store import open_stores
from tests.helpers import closed_port, wait_until
from tests.integration.cluster import (
    RedisServer,
    assert_features_match_log,
    batches,
    lag,
    logged_events,
    make_events,
    require_redis_server_binary,
)

pytestmark = pytest.mark.integration

SOCKET_TIMEOUT_S = 1.0
CONNECT_TIMEOUT_S = 1.0
# The HTTP client gives up after this: a request hanging much longer than the Redis socket
# timeout fails the test (a bound on a hang, not a timing measurement).
CLIENT_TIMEOUT_S = 3 * SOCKET_TIMEOUT_S + CONNECT_TIMEOUT_S + 5.0
WAIT_S = 40.0  # bound on waiting for the stream worker (it backs off up to 5 s after errors)


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    # The server keeps its data in an append-only file under tmp_path: a restarted Redis
    # without persistence comes back empty, which would "lose" every accepted event by
    # configuration rather than by any fault of tailorbot (docs/deploy.md asks for AOF).
    require_redis_server_binary()
    server = RedisServer(closed_port(), tmp_path / "redis", appendonly=True)
    server.start()
    try:
        yield server
    finally:
        server.resume()  # a SIGSTOPped server cannot act on SIGTERM
        server.stop()


def app_settings(server: RedisServer, tmp_path: Path) -> Settings:
    timeouts = f"socket_timeout={SOCKET_TIMEOUT_S}&connect_timeout={CONNECT_TIMEOUT_S}"
    return Settings.load(
        data_dir=tmp_path / "data",
        partitions=4,
        port=closed_port(),
        worker_batch=100,
        log_url=f"{server.url}?prefix=tb&{timeouts}&session_timeout=2",
        store_url=f"{server.url}?prefix=tb&{timeouts}",
        ready_requires_model=False,  # readiness of the backends only: no model in this test
    )


def post(client: httpx.Client, events: list[dict]) -> httpx.Response:
    return client.post("/v1/events", json={"events": events})


def ingest(client: httpx.Client, events: list[dict]) -> list[str]:
    """Post ``events`` in batches; every batch must be accepted. Returns the event ids."""
    ids = []
    for batch in batches(events, 100):
        response = post(client, list(batch))
        assert response.status_code == 202, response.text
        ids += [status["event_id"] for status in response.json()["results"]]
    return ids


def assert_unavailable(response: httpx.Response, what: str) -> None:
    """503, Retry-After, and the API's JSON error naming the backend (no stack trace)."""
    assert response.status_code == 503, response.text
    assert int(response.headers["Retry-After"]) >= 1
    body = response.json()
    assert set(body) == {"error", "message", "problems"}
    assert body["error"] == "unavailable" and body["message"].startswith(f"{what} unavailable")
    assert "Traceback" not in response.text and 'File "' not in response.text


def assert_exactly_once(log: EventLog, settings: Settings, accepted: list[str]) -> None:
    """Every accepted event is in the log and counted once in its user's features."""
    stores = open_stores(settings.resolved_store_url())
    try:
        logged = {e["event_id"] for evs in logged_events(log).values() for e in evs}
        assert logged == set(accepted)
        totals = assert_features_match_log(log, stores, settings, now=time.time())
        assert sum(totals.values()) == len(set(accepted))
    finally:
        stores.close()


@contextmanager
def serving(settings: Settings) -> Iterator[tuple[httpx.Client, EventLog]]:
    """The real API over HTTP (a uvicorn thread of this process), a client bounded by
    CLIENT_TIMEOUT_S, and the test's own handle on the same event log."""
    log = open_log(settings.resolved_log_url(), settings.partitions)
    try:
        with (
            EmbeddedServer(settings) as api,
            httpx.Client(base_url=api.url, timeout=CLIENT_TIMEOUT_S) as client,
        ):
            yield client, log
    finally:
        log.close()


def worker_running(client: httpx.Client) -> bool:
    return client.get("/readyz").json()["checks"]["worker"] == "running"


def test_ingestion_answers_503_while_redis_is_down_and_recovers_without_a_restart(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    settings = app_settings(redis_server, tmp_path)
    start = time.time() - 86400
    events = make_events(900, users=12, seed=21, start=start, span_s=86000, tag="o")
    before, during, after = events[:300], events[300:600], events[600:]
    with serving(settings) as (client, log):
        accepted = ingest(client, before)
        wait_until(lambda: lag(log, settings) == 0, "the worker to apply", WAIT_S)
        user = before[0]["user_id"]
        assert client.get(f"/v1/users/{user}/features").status_code == 200

        redis_server.stop()
        for batch in batches(during, 100):
            assert_unavailable(post(client, list(batch)), "event log")
        assert_unavailable(client.get(f"/v1/users/{user}/features"), "online store")
        ready = client.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["checks"]["log"].startswith("unreachable")

        redis_server.start()  # same port; it reloads its append-only file
        # The very first request after the restart is served: no dead pooled connection
        # is handed out (and the app was not restarted).
        accepted += ingest(client, during)
        # The chatbot goes on, and re-sends a batch it had sent before the outage.
        accepted += ingest(client, after + before[:100])
        wait_until(lambda: lag(log, settings) == 0, "the worker to recover", WAIT_S)
        assert client.get("/readyz").status_code == 200 and worker_running(client)
        view = client.get(f"/v1/users/{user}/features").json()["features"]
        assert view["events_total"] == sum(e["user_id"] == user for e in events)
        assert len(accepted) == len(events) + 100
        assert_exactly_once(log, settings, accepted)


def test_a_stalled_redis_turns_into_503_after_the_socket_timeout_and_a_retry_counts_once(
    redis_server: RedisServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Backpressure reads the lag once (cached from then on), so that the stalled request's
    # only Redis call is the append itself: it is sent, times out, and runs once Redis
    # resumes. The batch is in the log, yet the chatbot was told 503 and sends it again.
    monkeypatch.setattr(ingestion_module, "LAG_CACHE_S", 3600.0)
    settings = app_settings(redis_server, tmp_path)
    start = time.time() - 86400
    events = make_events(400, users=8, seed=22, start=start, span_s=86000, tag="p")
    first, stalled = events[:200], events[200:]
    with serving(settings) as (client, log):
        accepted = ingest(client, first)
        redis_server.pause()  # connections stay open; nothing is answered
        try:
            # The client's timeout bounds the wait: the API gives up after its socket timeout.
            assert_unavailable(post(client, stalled), "event log")
        finally:
            redis_server.resume()
        accepted += ingest(client, stalled)  # the retry, with the same event ids
        wait_until(lambda: lag(log, settings) == 0, "the worker to recover", WAIT_S)
        assert worker_running(client)
        logged = [e["event_id"] for evs in logged_events(log).values() for e in evs]
        assert sorted(logged) == sorted(accepted + [e["event_id"] for e in stalled])  # twice
        assert_exactly_once(log, settings, accepted)  # ... and counted once


def test_readyz_is_503_while_redis_answers_but_refuses_writes(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    """A primary demoted to a read-only replica (a failover) answers PING but refuses every
    append and store write: a load balancer must stop sending traffic, so /readyz says so."""
    settings = app_settings(redis_server, tmp_path)
    admin = redis.Redis(port=redis_server.port, socket_timeout=5)
    try:
        with serving(settings) as (client, _):
            assert client.get("/readyz").status_code == 200
            admin.replicaof("127.0.0.1", closed_port())  # read-only from now on
            ready = client.get("/readyz")
            assert ready.status_code == 503, ready.text
            checks = ready.json()["checks"]
            assert checks["log"] == "unreachable" and checks["store"] == "unreachable"
            admin.replicaof("no", "one")  # promoted again
            wait_until(lambda: client.get("/readyz").status_code == 200, "ready again", WAIT_S)
    finally:
        admin.close()
