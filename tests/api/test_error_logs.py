"""The error log lines name the route template, never the path (it holds the user id)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from tailorbot.api.errors import install_error_handlers
from tailorbot.errors import BackendError
from tests.api.conftest import make_client

USER = "cust-88231-jq"


class _StoreDown(BackendError):
    what = "feature store"


def _error_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "tailorbot.api.errors"]


def test_unhandled_error_logs_the_route_template(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    def fail(user_id: str) -> None:
        raise RuntimeError("boom")

    with make_client(tmp_path, run_worker_in_server=False) as client:
        # the route reads its user as a decision does; Stores is frozen for the application
        object.__setattr__(client.app.state.runtime.stores, "user_reader", fail)
        with caplog.at_level(logging.WARNING, logger="tailorbot.api.errors"):
            assert client.get(f"/v1/users/{USER}/features").status_code == 500
    assert _error_lines(caplog) == ["unhandled error on GET /v1/users/{user_id}/features"]


def test_unavailable_backend_logs_the_route_template(caplog: pytest.LogCaptureFixture) -> None:
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/v1/things/{user_id}")
    def thing(user_id: str) -> None:
        raise _StoreDown("down")

    with caplog.at_level(logging.WARNING, logger="tailorbot.api.errors"):
        assert TestClient(app).get(f"/v1/things/{USER}").status_code == 503
    assert _error_lines(caplog) == ["feature store unavailable on GET /v1/things/{user_id}: down"]
