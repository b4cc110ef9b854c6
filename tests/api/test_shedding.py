"""Load shedding on a real uvicorn server: a fast 503 + Retry-After past the concurrency or
in-flight body bound, 408 for a body that does not arrive, 415 for a non-JSON body, and the
probes answered all along."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import orjson
import pytest

from tailorbot.api.server import EmbeddedServer
from tailorbot.config import Settings
from tests.api.support import message


@contextmanager
def server(tmp_path: Path, **overrides: object) -> Iterator[EmbeddedServer]:
    settings = Settings.load(data_dir=tmp_path, run_worker_in_server=False, **overrides)
    with EmbeddedServer(settings) as running:
        yield running


@contextmanager
def stalled_request(running: EmbeddedServer, length: int, sent: bytes = b"{") -> Iterator[None]:
    """A POST /v1/events that announces ``length`` bytes, sends ``sent`` and stalls until the
    block ends (then its socket is closed)."""
    with socket.create_connection((running.host, running.port), timeout=30) as sock:
        head = (
            f"POST /v1/events HTTP/1.1\r\nHost: {running.host}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {length}\r\n\r\n"
        )
        sock.sendall(head.encode() + sent)
        _wait_for_admission(running)
        yield


def _wait_for_admission(running: EmbeddedServer) -> None:
    """Until the stalled request holds its slot (it is admitted as soon as uvicorn parsed
    its head): the in-flight gauge of the metrics endpoint says so."""
    for _ in range(500):
        text = httpx.get(running.url + "/metrics", timeout=5).text
        if "tailorbot_requests_in_flight 1.0" in text:
            return
        time.sleep(0.02)
    raise AssertionError("the stalled request was never admitted")


def _shed_count(running: EmbeddedServer, reason: str) -> float:
    for line in httpx.get(running.url + "/metrics", timeout=5).text.splitlines():
        if line.startswith(f'tailorbot_requests_shed_total{{reason="{reason}"}}'):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_past_the_concurrency_bound_a_request_is_shed_at_once(tmp_path: Path) -> None:
    with server(tmp_path, max_concurrent_requests=1) as running:
        with stalled_request(running, length=100):
            response = httpx.post(running.url + "/v1/events", json=message(), timeout=10)
            assert response.status_code == 503, response.text
            assert response.headers["Retry-After"] == "1"
            assert response.json()["error"] == "overloaded"
            assert httpx.get(running.url + "/healthz", timeout=5).status_code == 200
            ready = httpx.get(running.url + "/readyz", timeout=5)  # answered, not shed
            assert ready.json()["checks"]["log"] == "ok"
            assert _shed_count(running, "concurrency") == 1.0
        # the stalled one is gone: room again
        for _ in range(200):
            response = httpx.post(running.url + "/v1/events", json=message(), timeout=10)
            if response.status_code == 202:
                break
        assert response.status_code == 202, response.text


def test_past_the_in_flight_body_bound_a_request_is_shed(tmp_path: Path) -> None:
    with (
        server(tmp_path, max_body_bytes=8_000, max_inflight_body_bytes=10_000) as running,
        stalled_request(running, length=8_000),  # holds 8,000 of the 10,000 bytes
    ):
        response = httpx.post(
            running.url + "/v1/events",
            content=orjson.dumps([message(text="x" * 2_000)] * 2),
            headers={"content-type": "application/json"},
            timeout=10,
        )
        assert response.status_code == 503, response.text
        assert "Retry-After" in response.headers
        assert _shed_count(running, "body_bytes") == 1.0
        small = httpx.post(running.url + "/v1/events", json=message(), timeout=10)
        assert small.status_code == 202, small.text


def test_a_body_that_does_not_arrive_in_time_is_a_408(tmp_path: Path) -> None:
    with server(tmp_path, body_read_timeout_s=0.3) as running:
        with socket.create_connection((running.host, running.port), timeout=30) as sock:
            sock.sendall(
                b"POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                b"Content-Length: 100\r\n\r\n{"
            )
            answer = sock.recv(65536)
        assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
        assert b"not received within 0.3s" in answer


@pytest.mark.parametrize(
    ("method", "path", "content_type"),
    [
        ("POST", "/v1/events", "text/plain"),
        ("POST", "/v1/events", "application/x-www-form-urlencoded"),
        ("PUT", "/v1/users/u1", "text/plain; charset=utf-8"),
        ("POST", "/v1/personalize", "text/plain"),
    ],
)
def test_a_body_that_is_not_json_is_a_415(
    tmp_path: Path, method: str, path: str, content_type: str
) -> None:
    with server(tmp_path) as running:
        response = httpx.request(
            method,
            running.url + path,
            content=orjson.dumps(message()),
            headers={"content-type": content_type},
            timeout=10,
        )
        assert response.status_code == 415, response.text
        assert "application/json" in response.json()["message"]
        assert httpx.get(running.url + "/metrics", timeout=5).status_code == 200


def test_the_dashboard_sign_in_form_is_not_a_415(tmp_path: Path) -> None:
    with server(tmp_path, api_key="k") as running:
        response = httpx.post(
            running.url + "/dashboard/login",
            content=b"key=k",
            headers={"content-type": "application/x-www-form-urlencoded"},
            timeout=10,
        )
        assert response.status_code == 303, response.text
