"""Deeply nested JSON and U+0000 in identifiers at the door: a clear 4xx, never a 500, and
nothing of the refused event reaches the log (``POST /v1/events`` on the lean route and
through FastAPI, ``PUT /v1/kb/...``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from fastapi.testclient import TestClient

from tailorbot.api.routers.events import parse_events_body
from tailorbot.errors import BadRequest
from tailorbot.events.codec import decode_event
from tests.api.conftest import log_ends, make_client
from tests.api.support import event, message

JSON = {"content-type": "application/json"}


def nested(depth: int, leaf: bytes = b"1") -> bytes:
    """A JSON list nested ``depth`` deep (built as bytes: encoders recurse too)."""
    return b"[" * depth + leaf + b"]" * depth


def with_value(raw: dict, name: str, value: bytes) -> bytes:
    """``raw`` as JSON, with ``value`` (raw JSON) under ``name``."""
    return orjson.dumps({**raw, name: "@value@"}).replace(b'"@value@"', value)


@pytest.fixture(params=[True, False], ids=["lean route", "fastapi route"])
def any_client(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[TestClient]:
    with make_client(tmp_path, run_worker_in_server=False, fast_routes=request.param) as client:
        yield client


@pytest.mark.parametrize("depth", [400, 500, 1000])
@pytest.mark.parametrize(("name", "field"), [("x", "x"), ("metadata", "metadata")])
def test_a_deeply_nested_field_is_a_422_naming_it(
    any_client: TestClient, depth: int, name: str, field: str
) -> None:
    before = log_ends(any_client)
    body = with_value(event("rating", "u7", score=5), name, nested(depth))
    response = any_client.post("/v1/events", content=body, headers=JSON)
    assert response.status_code == 422, response.text
    assert [p["field"] for p in response.json()["problems"]] == [field]
    assert log_ends(any_client) == before


def test_a_deeply_nested_metadata_value_is_a_422_naming_it(any_client: TestClient) -> None:
    body = with_value(message(), "metadata", b'{"k": ' + nested(500) + b"}")
    response = any_client.post("/v1/events", content=body, headers=JSON)
    assert response.status_code == 422, response.text
    problems = response.json()["problems"]
    assert [(p["field"], "metadata['k']" in p["reason"]) for p in problems] == [("metadata", True)]


def test_partial_mode_refuses_only_the_deeply_nested_event(any_client: TestClient) -> None:
    good = orjson.dumps(event("rating", "u7", score=5, event_id="good-1"))
    deep = with_value(event("rating", "u8", score=5), "x", nested(500))
    body = b'{"events": [' + good + b"," + deep + b"]}"
    response = any_client.post("/v1/events?partial=true", content=body, headers=JSON)
    assert response.status_code == 200, response.text
    result = response.json()
    assert (result["accepted"], result["rejected"]) == (1, 1)
    assert result["results"][0]["event_id"] == "good-1"
    assert result["results"][1]["errors"][0]["field"] == "x"


def test_a_long_number_nested_past_the_json_module_limit_is_a_400(any_client: TestClient) -> None:
    before = log_ends(any_client)
    body = nested(1000, b"1234567890123456789012")
    response = any_client.post("/v1/events", content=body, headers=JSON)
    assert response.status_code == 400, response.text
    assert "nested too deeply" in response.json()["message"]
    assert log_ends(any_client) == before


def test_parse_events_body_refuses_deep_nesting_with_a_long_number() -> None:
    with pytest.raises(BadRequest, match="nested too deeply"):
        parse_events_body(nested(1000, b"1234567890123456789012"))
    # a long number not deeply nested still reaches the schema as an int
    assert parse_events_body(b'[{"n": 1234567890123456789012}]') == [{"n": 1234567890123456789012}]


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"user_id": "zz\u0000top"}, "user_id"),
        ({"session_id": "s\u00001"}, "session_id"),
        ({"event_id": "\u0000"}, "event_id"),
        ({"intent": "card\u0000_arrival"}, "intent"),
    ],
)
def test_a_nul_in_an_identifier_is_refused_naming_the_field(
    any_client: TestClient, fields: dict, field: str
) -> None:
    before = log_ends(any_client)
    response = any_client.post("/v1/events", json=message(**fields))
    assert response.status_code == 422, response.text
    problems = response.json()["problems"]
    assert [p["field"] for p in problems] == [field]
    assert "pattern" in problems[0]["reason"]
    assert log_ends(any_client) == before


def test_a_nul_in_an_id_does_not_merge_users_in_partial_mode(any_client: TestClient) -> None:
    batch = [message("zztop", event_id="e-1"), message("zz\u0000top", event_id="e-2")]
    response = any_client.post("/v1/events?partial=true", json=batch)
    assert response.status_code == 200, response.text
    statuses = [r["status"] for r in response.json()["results"]]
    assert statuses == ["accepted", "rejected"]


def test_a_nul_in_free_text_is_still_removed(any_client: TestClient) -> None:
    body = message("u1", "a\u0000b", metadata={"k\u0000": "v\u0000"}, event_id="e-1")
    status = any_client.post("/v1/events", json=body).json()["results"][0]
    log = any_client.app.state.runtime.log
    stored = decode_event(log.read(status["partition"], status["offset"], 1)[0].value)
    assert (stored["text"], stored["metadata"], stored["user_id"]) == ("ab", {"k": "v"}, "u1")


@pytest.mark.parametrize("depth", [200, 900, 1000])
def test_a_kb_record_nested_too_deeply_is_a_422_and_publishes_nothing(
    any_client: TestClient, depth: int
) -> None:
    before = any_client.get("/v1/kb").json()["version"]
    record = {"title": "Test", "body": "Some body text here.", "intents": ["card_arrival"]}
    body = with_value(record, "x", nested(depth))
    response = any_client.put("/v1/kb/articles/kb-test1", content=body, headers=JSON)
    assert response.status_code in (400, 422), response.text  # 400: past FastAPI's parser
    if response.status_code == 422:
        assert [p["field"] for p in response.json()["problems"]] == ["articles[kb-test1].x"]
    assert any_client.get("/v1/kb").json()["version"] == before
    assert any_client.get("/v1/kb/articles/kb-test1").status_code == 404
