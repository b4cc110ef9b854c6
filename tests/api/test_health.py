from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from tailorbot import __version__
from tailorbot.events.schema import event_type_names
from tests.api.conftest import make_client
from tests.api.support import event, message
from tests.services.decisions.conftest import save_model


def test_healthz(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok", "version": __version__}


def test_readyz_reports_backends_lag_and_worker(tmp_path: Path) -> None:
    save_model(tmp_path)  # not ready without one (tests/api/test_exposure.py)
    with make_client(tmp_path, run_worker_in_server=False) as client:
        _readyz_reports_backends_lag_and_worker(client)


def _readyz_reports_backends_lag_and_worker(client: TestClient) -> None:
    client.post("/v1/events", json=[message(), message()])
    response = client.get("/readyz")
    assert response.status_code == 200
    body = response.json()
    assert body["ready"] is True
    assert body["checks"]["log"] == "ok" and body["checks"]["store"] == "ok"
    assert body["checks"]["lag"] == 2  # no worker in this app
    assert body["checks"]["worker"] == "not running in this process"


def test_readyz_with_a_worker(live_client: TestClient) -> None:
    assert live_client.get("/readyz").json()["checks"]["worker"] == "running"


def test_metrics_count_ingested_and_rejected_events(client: TestClient) -> None:
    client.post("/v1/events", json=[message(), message(), event("rating", score=3)])
    client.post("/v1/events", json=[message(), event("sneeze")])
    client.get("/healthz")
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert 'tailorbot_events_ingested_total{type="message"} 2.0' in text
    assert 'tailorbot_events_ingested_total{type="rating"} 1.0' in text
    assert 'tailorbot_events_rejected_total{reason="invalid"} 1.0' in text
    assert 'tailorbot_request_latency_seconds_count{route="/v1/events"} 2.0' in text
    assert 'tailorbot_request_latency_seconds_count{route="/healthz"} 1.0' in text


def test_schema_endpoint(client: TestClient) -> None:
    body = client.get("/v1/schema").json()
    assert body["event_types"] == event_type_names()
    assert set(body["schemas"]) == set(event_type_names())
    assert "text" in body["schemas"]["message"]["properties"]
    assert body["free_text_fields"] == ["text", "reason"]
    assert body["limits"]["max_batch_events"] == 1000


def test_openapi_documents_the_event_body(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    body = spec["paths"]["/v1/events"]["post"]["requestBody"]["content"]["application/json"]
    refs = {item["$ref"].rsplit("/", 1)[1] for item in body["schema"]["oneOf"]}
    assert {"Message", "Rating", "EventBatch"} <= refs
    assert refs <= set(spec["components"]["schemas"])  # every reference resolves
    assert "/v1/users/{user_id}/features" in spec["paths"]
    assert client.get("/docs").status_code == 200


def test_unknown_route_and_method_are_json(client: TestClient) -> None:
    missing = client.get("/v1/nope")
    assert missing.status_code == 404 and missing.json()["error"] == "not_found"
    wrong = client.get("/v1/events")
    assert wrong.status_code == 405 and wrong.json()["error"] == "method_not_allowed"


def test_an_unexpected_error_is_a_500_without_a_trace(client: TestClient) -> None:
    def broken() -> None:
        raise RuntimeError("secret internals")

    client.app.add_api_route("/v1/broken", broken)
    response = client.get("/v1/broken", headers={"X-Request-ID": "req-500"})
    assert response.status_code == 500
    assert response.headers["x-request-id"] == "req-500"  # like every other answer
    assert response.json() == {
        "error": "internal",
        "message": "internal error; the server log has the details",
        "problems": [],
    }
    assert "secret internals" not in response.text
