from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tailorbot.api.app import create_app
from tailorbot.config import Settings


def make_client(data_dir: Path, **overrides) -> TestClient:
    settings = Settings.load(data_dir=data_dir, **overrides)
    return TestClient(create_app(settings), raise_server_exceptions=False)


def post_case(client: TestClient, path: str, body: Any, headers: dict[str, str]) -> Any:
    """POST ``body`` (bytes as they are, anything else as JSON) with the API key ``k``."""
    sent = {"x-api-key": "k", **headers}
    if isinstance(body, bytes):
        return client.post(path, content=body, headers=sent)
    return client.post(path, json=body, headers=sent)


def error_gist(payload: dict[str, Any]) -> dict[str, Any]:
    """An error answer as the lean routes and FastAPI's must agree on: JSON-mode and
    Python-mode validation word their reasons apart, so the message up to its colon and
    the fields of the problems."""
    return {
        **payload,
        "message": payload["message"].split(":")[0],
        "problems": sorted(p["field"] for p in payload["problems"]),
    }


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    """An app without an in-process worker (the log only grows)."""
    with make_client(tmp_path, run_worker_in_server=False) as test_client:
        yield test_client


@pytest.fixture
def live_client(tmp_path: Path) -> Iterator[TestClient]:
    """An app whose stream worker runs in a background thread."""
    with make_client(tmp_path, run_worker_in_server=True) as test_client:
        yield test_client


def log_ends(test_client: TestClient) -> dict[int, int]:
    return test_client.app.state.runtime.log.end_offsets()
