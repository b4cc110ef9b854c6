from __future__ import annotations

import time
from pathlib import Path

import orjson
import pytest
from fastapi.testclient import TestClient

from tailorbot.events.codec import decode_event
from tests.api.conftest import log_ends, make_client
from tests.api.support import event, message

# --- accepted -------------------------------------------------------------------------------


def test_one_event_is_accepted_and_logged(client: TestClient) -> None:
    before = log_ends(client)
    response = client.post("/v1/events", json=message("u1", "hello", event_id="e-1"))
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["accepted"] == 1 and body["rejected"] == 0
    status = body["results"][0]
    assert status["status"] == "accepted" and status["event_id"] == "e-1"
    assert log_ends(client)[status["partition"]] == before[status["partition"]] + 1
    record = client.app.state.runtime.log.read(status["partition"], status["offset"], 1)[0]
    stored = decode_event(record.value)
    assert (record.key, stored["text"], stored["event_id"]) == ("u1", "hello", "e-1")
    assert stored["ingested_at"] > 0


def test_batch_and_bare_array_are_accepted(client: TestClient) -> None:
    batch = [message("u1"), event("rating", "u2", score=5), event("session_ended", "u1")]
    response = client.post("/v1/events", json={"events": batch})
    assert response.status_code == 202
    assert [r["status"] for r in response.json()["results"]] == ["accepted"] * 3
    response = client.post("/v1/events", json=[message("u3")])
    assert response.status_code == 202 and response.json()["accepted"] == 1
    assert sum(log_ends(client).values()) == 4


def test_event_id_is_assigned_when_missing(client: TestClient) -> None:
    ids = [
        r["event_id"]
        for r in client.post("/v1/events", json=[message(), message()]).json()["results"]
    ]
    assert len(set(ids)) == 2 and all(ids)


def test_partial_mode_stores_the_valid_events_and_reports_each(client: TestClient) -> None:
    batch = [
        message("u1"),
        {"type": "message", "user_id": "u1"},
        event("rating", score=9),
        message("u2"),
    ]
    response = client.post("/v1/events?partial=true", json={"events": batch})
    assert response.status_code == 200
    body = response.json()
    assert (body["accepted"], body["rejected"]) == (2, 2)
    statuses = [r["status"] for r in body["results"]]
    assert statuses == ["accepted", "rejected", "rejected", "accepted"]
    missing = {e["field"] for e in body["results"][1]["errors"]}
    assert {"role", "text", "session_id", "timestamp"} <= missing
    assert body["results"][2]["errors"][0]["field"] == "score"
    assert sum(log_ends(client).values()) == 2


def test_pii_is_redacted_before_it_is_logged(client: TestClient) -> None:
    text = "mail me at jane@example.com or +44 20 7946 0958"
    response = client.post("/v1/events", json=message("u1", text, metadata={"ip": "10.1.2.3"}))
    status = response.json()["results"][0]
    record = client.app.state.runtime.log.read(status["partition"], status["offset"], 1)[0]
    stored = decode_event(record.value)
    assert stored["text"] == "mail me at <EMAIL> or <PHONE>"
    assert stored["metadata"] == {"ip": "<IP>"}


# --- rejected: a clear 4xx and the log unchanged --------------------------------------------

BAD_BODIES = [
    # (body bytes, status, words the message must contain)
    (b'{"type": "message",', 400, "not valid JSON"),
    (b"", 400, "empty"),
    (b"\xff\xfe", 400, "not valid JSON"),
    (b"42", 422, "must be a JSON object"),
    (b'{"events": "nope"}', 422, "must be a list"),
    (b'{"events": []}', 422, "no events"),
    (b'{"events": [], "extra": 1}', 422, "only the key 'events'"),
]


@pytest.mark.parametrize(("body", "status", "words"), BAD_BODIES)
def test_bad_bodies(client: TestClient, body: bytes, status: int, words: str) -> None:
    before = log_ends(client)
    response = client.post("/v1/events", content=body, headers={"content-type": "application/json"})
    assert response.status_code == status
    assert words in response.json()["message"]
    assert log_ends(client) == before


def _rejected(client: TestClient, body: object, status: int) -> dict:
    before = log_ends(client)
    response = client.post("/v1/events", json=body)
    assert response.status_code == status, response.text
    assert log_ends(client) == before, "a rejected request must not write to the log"
    payload = response.json()
    assert set(payload) == {"error", "message", "problems"}
    assert "Traceback" not in response.text
    return payload


def test_unknown_type_names_the_allowed_types(client: TestClient) -> None:
    payload = _rejected(client, event("sneeze"), 422)
    problem = payload["problems"][0]
    assert (problem["index"], problem["field"]) == (0, "type")
    assert "unknown event type 'sneeze'" in problem["reason"]
    for name in ("session_started", "message", "rating", "handoff", "session_ended"):
        assert name in problem["reason"]


def test_missing_type(client: TestClient) -> None:
    problem = _rejected(client, {"user_id": "u1"}, 422)["problems"][0]
    assert problem["field"] == "type" and "missing" in problem["reason"]


def test_one_bad_event_rejects_the_whole_batch(client: TestClient) -> None:
    batch = [message("u1"), message("u1", role="robot"), message("u2"), message("u3", text="")]
    payload = _rejected(client, {"events": batch}, 422)
    assert {(p["index"], p["field"]) for p in payload["problems"]} == {(1, "role"), (3, "text")}
    assert "2 of 4" in payload["message"] and "nothing was stored" in payload["message"]


@pytest.mark.parametrize(
    ("bad_event", "field", "words"),
    [
        (message(timestamp="2999-01-01T00:00:00Z"), "timestamp", "in the future"),
        (message(timestamp="2001-01-01T00:00:00Z"), "timestamp", "older than"),
        (message(timestamp="2026-01-01T10:00:00"), "timestamp", "timezone"),
        (message(timestamp="yesterday"), "timestamp", "ISO-8601"),
        (message(user_id="bad user!"), "user_id", "pattern"),
        (message(color="red"), "color", "Extra inputs"),
        (message(confidence=1.5), "confidence", "less than or equal"),
        (message(metadata={f"k{i}": i for i in range(40)}), "metadata", "at most 32"),
        (message(metadata={"note": "x" * 600}), "metadata", "longer than 512"),
        (event("rating", score="five"), "score", "integer"),
        (event("article_feedback", article_id="a1"), "helpful", "Field required"),
    ],
)
def test_invalid_fields_are_named(
    client: TestClient, bad_event: dict, field: str, words: str
) -> None:
    problems = _rejected(client, {"events": [message(), bad_event]}, 422)["problems"]
    assert any(
        p["index"] == 1 and p["field"] == field and words in p["reason"] for p in problems
    ), problems


def test_an_event_that_is_not_an_object(client: TestClient) -> None:
    problem = _rejected(client, {"events": [message(), "hi"]}, 422)["problems"][0]
    assert problem == {"index": 1, "field": "(event)", "reason": "each event must be a JSON object"}


def test_text_too_long_is_413_naming_index_and_field(tmp_path: Path) -> None:
    with make_client(tmp_path, run_worker_in_server=False, max_text_chars=50) as client:
        batch = [message(), message(text="x" * 51), event("handoff", reason="y" * 60)]
        payload = _rejected(client, {"events": batch}, 413)
        assert {(p["index"], p["field"]) for p in payload["problems"]} == {
            (1, "text"),
            (2, "reason"),
        }
        assert "51 characters; at most 50" in payload["problems"][0]["reason"]


def test_too_many_events_is_413(tmp_path: Path) -> None:
    with make_client(tmp_path, run_worker_in_server=False, max_batch_events=3) as client:
        payload = _rejected(client, {"events": [message()] * 4}, 413)
        assert "at most 3 per request" in payload["message"]


def test_body_over_the_limit_is_413_by_content_length(tmp_path: Path) -> None:
    with make_client(tmp_path, run_worker_in_server=False, max_body_bytes=2048) as client:
        payload = _rejected(client, {"events": [message(text="z" * 500)] * 5}, 413)
        assert "at most 2048" in payload["message"]


def test_body_over_the_limit_is_413_when_streamed(tmp_path: Path) -> None:
    with make_client(tmp_path, run_worker_in_server=False, max_body_bytes=2048) as client:
        body = orjson.dumps({"events": [message(text="z" * 500)] * 5})
        chunks = (body[i : i + 512] for i in range(0, len(body), 512))  # no Content-Length
        before = log_ends(client)
        response = client.post("/v1/events", content=chunks)
        assert response.status_code == 413
        assert "at most 2048" in response.json()["message"]
        assert log_ends(client) == before


def test_backpressure_answers_429_with_retry_after(tmp_path: Path) -> None:
    with make_client(tmp_path, run_worker_in_server=False, backpressure_max_lag=2) as client:
        assert client.post("/v1/events", json=[message()] * 3).status_code == 202
        time.sleep(0.15)  # let the runtime's lag cache (100 ms) expire
        before = log_ends(client)
        response = client.post("/v1/events", json=message())
        assert response.status_code == 429
        assert response.headers["retry-after"] == "1"
        assert "3 events behind" in response.json()["message"]
        assert log_ends(client) == before


def test_unreachable_log_answers_503(tmp_path: Path) -> None:
    url = "redis://127.0.0.1:1/0?connect_timeout=0.5&socket_timeout=0.5"
    with make_client(tmp_path, run_worker_in_server=False, log_url=url) as client:
        response = client.post("/v1/events", json=message())
        assert response.status_code == 503
        assert response.headers["retry-after"] == "1"
        assert response.json()["message"].startswith("event log unavailable")
        ready = client.get("/readyz")
        assert ready.status_code == 503 and ready.json()["checks"]["log"].startswith("unreachable")
