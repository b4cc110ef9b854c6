"""What the API tells whom: readiness says why it is not ready without a model; error bodies
and the unauthenticated /readyz name no file path or host:port (the server log has them);
/docs and /openapi.json follow the API key."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.api.conftest import make_client
from tests.api.support import message
from tests.helpers import closed_port
from tests.services.decisions.conftest import save_model


def test_not_ready_without_an_intent_model_and_says_why(tmp_path: Path) -> None:
    with make_client(tmp_path, run_worker_in_server=False) as client:
        response = client.get("/readyz")
        assert response.status_code == 503
        body = response.json()
        assert body["ready"] is False
        assert body["checks"]["intent_model"].startswith("missing")
        assert str(tmp_path) not in response.text
        save_model(tmp_path)  # trained while the server runs: picked up
        ready = client.get("/readyz")
        assert ready.status_code == 200 and ready.json()["checks"]["intent_model"] == "ok"


def test_a_model_is_not_required_when_the_settings_say_so(tmp_path: Path) -> None:
    with make_client(tmp_path, run_worker_in_server=False, ready_requires_model=False) as client:
        assert client.get("/readyz").status_code == 200


def test_no_path_in_the_no_model_answer(tmp_path: Path) -> None:
    with make_client(tmp_path, run_worker_in_server=False) as client:
        body = {"user_id": "u1", "session_id": "s1", "message": "hi"}
        response = client.post("/v1/personalize", json=body)
        assert response.status_code == 503
        assert str(tmp_path) not in response.text and "tailorbot train" in response.text


def test_no_host_or_port_in_503_bodies_or_readyz(tmp_path: Path) -> None:
    port = closed_port()
    url = f"redis://127.0.0.1:{port}/0?connect_timeout=0.3&socket_timeout=0.3"
    with make_client(
        tmp_path, run_worker_in_server=False, log_url=url, api_key="k", ready_requires_model=False
    ) as client:
        response = client.post("/v1/events", json=message(), headers={"X-API-Key": "k"})
        assert response.status_code == 503
        assert response.json()["message"] == "event log unavailable"
        ready = client.get("/readyz")  # no API key needed, so nothing to learn from it
        assert ready.status_code == 503 and ready.json()["checks"]["log"] == "unreachable"
        for text in (response.text, ready.text):
            assert str(port) not in text and "127.0.0.1" not in text and str(tmp_path) not in text


@pytest.mark.parametrize("path", ["/docs", "/openapi.json", "/redoc"])
def test_docs_follow_the_api_key(tmp_path: Path, path: str) -> None:
    with make_client(tmp_path, run_worker_in_server=False, api_key="secret") as client:
        assert client.get(path).status_code == 401
        assert client.get(path, headers={"X-API-Key": "wrong"}).status_code == 403
        assert client.get(path, headers={"X-API-Key": "secret"}).status_code == 200
    with make_client(
        tmp_path, run_worker_in_server=False, api_key="secret", public_docs=True
    ) as client:
        assert client.get(path).status_code == 200


def test_docs_are_open_without_a_key(client: TestClient) -> None:
    assert client.get("/openapi.json").status_code == 200
