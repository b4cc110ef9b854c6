"""Structured logs: one JSON object per line with the request and trace ids, no PII."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tailorbot.api.app import create_app
from tailorbot.config import Settings
from tailorbot.telemetry.logs import configure_logging, request_context, user_ref

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{TRACE}-00f067aa0ba902b7-01"


@pytest.fixture
def captured(
    tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[tuple[Settings, io.StringIO]]:
    """Logging configured as ``tailorbot serve`` does, into a buffer; undone afterwards."""
    fmt = getattr(request, "param", "json")
    settings = Settings.load(data_dir=tmp_path, run_worker_in_server=False, log_format=fmt)
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    stream = io.StringIO()
    handler = configure_logging(settings, stream)
    try:
        yield settings, stream
    finally:
        root.removeHandler(handler)
        root.handlers[:] = handlers
        root.setLevel(level)
        logging.getLogger("uvicorn.access").disabled = False


def lines(stream: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_every_request_line_has_the_request_and_trace_ids_and_no_user_id(
    captured: tuple[Settings, io.StringIO],
) -> None:
    settings, stream = captured
    with TestClient(create_app(settings)) as client:
        sent = client.get(
            "/v1/users/alice.smith@example.com/features",
            headers={"X-Request-ID": "req-abc", "traceparent": TRACEPARENT},
        )
        fresh = client.get("/v1/users/bob_99/features")
    assert sent.headers["x-request-id"] == "req-abc"
    assert fresh.headers["x-request-id"]  # one is made when none is sent
    logged = lines(stream)
    access = [line for line in logged if line.get("event") == "request"]
    assert len(access) == 2
    first, second = access
    assert first["request_id"] == "req-abc" and first["trace_id"] == TRACE
    assert first["route"] == "/v1/users/{user_id}/features" and first["method"] == "GET"
    assert first["status"] == sent.status_code and first["duration_ms"] >= 0
    assert second["request_id"] == fresh.headers["x-request-id"]
    assert len(second["trace_id"]) == 32 and second["trace_id"] != TRACE  # made for it
    assert all(
        {"time", "level", "logger", "message", "request_id", "trace_id"} <= set(line)
        for line in logged
    )
    text = stream.getvalue()
    assert "alice" not in text and "bob_99" not in text


def test_messages_are_redacted_and_user_ids_logged_as_refs(
    captured: tuple[Settings, io.StringIO],
) -> None:
    _, stream = captured
    log = logging.getLogger("tailorbot.test")
    with request_context("r1", TRACEPARENT):
        log.warning(
            "mail jane@example.org, card 4111 1111 1111 1111", extra={"user": user_ref("jane")}
        )
    try:
        raise ValueError("bad iban DE89370400440532013000")
    except ValueError:
        log.exception("outside a request")
    inside, outside = lines(stream)
    assert "jane@example.org" not in inside["message"] and "4111" not in inside["message"]
    assert inside["user"] == user_ref("jane") and "jane" not in inside["user"]
    assert (inside["request_id"], inside["trace_id"]) == ("r1", TRACE)
    assert (outside["request_id"], outside["trace_id"]) == (None, None)
    assert "DE89370400440532013000" not in outside["exception"]
    assert "ValueError" in outside["exception"]


@pytest.mark.parametrize("captured", ["human"], indirect=True)
def test_the_human_format(captured: tuple[Settings, io.StringIO]) -> None:
    _, stream = captured
    with request_context("r2", TRACEPARENT):
        logging.getLogger("tailorbot.test").warning("hello", extra={"event": "demo"})
    line = stream.getvalue().strip()
    assert f"[r2 {TRACE}]" in line and "hello" in line and "event=demo" in line
    with pytest.raises(json.JSONDecodeError):
        json.loads(line)


def test_access_log_can_be_turned_off(tmp_path: Path) -> None:
    settings = Settings.load(data_dir=tmp_path, access_log=False, run_worker_in_server=False)
    stream = io.StringIO()
    handler = configure_logging(settings, stream)
    try:
        with TestClient(create_app(settings)) as client:
            client.get("/healthz")
    finally:
        logging.getLogger().removeHandler(handler)
        logging.getLogger("tailorbot.access").disabled = False
        logging.getLogger("uvicorn.access").disabled = False
    assert '"event": "request"' not in stream.getvalue()
