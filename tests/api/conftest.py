from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tailorbot.api.app import create_app
from tailorbot.config import Settings


def make_client(data_dir: Path, **overrides) -> TestClient:
    settings = Settings.load(data_dir=data_dir, **overrides)
    return TestClient(create_app(settings), raise_server_exceptions=False)


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
