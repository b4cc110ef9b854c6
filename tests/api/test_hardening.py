"""Hostile and odd input at the HTTP door: a clear 4xx per event, never a 500."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tailorbot.events.codec import decode_event
from tests.api.conftest import log_ends, make_client
from tests.api.support import event, message
from tests.services.decisions.conftest import save_model


@pytest.mark.parametrize("timestamp", ["9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00"])
def test_out_of_range_timestamp_is_a_422_naming_the_field(
    client: TestClient, timestamp: str
) -> None:
    before = log_ends(client)
    response = client.post("/v1/events", json=[message(), message(timestamp=timestamp)])
    assert response.status_code == 422, response.text
    (problem,) = response.json()["problems"]
    assert (problem["index"], problem["field"]) == (1, "timestamp")
    assert "outside the range" in problem["reason"]
    assert log_ends(client) == before


def test_partial_mode_keeps_the_valid_events_next_to_an_out_of_range_timestamp(
    client: TestClient,
) -> None:
    batch = [message("u1"), event("rating", score=4, timestamp="9999-12-31T23:59:59-14:00")]
    response = client.post("/v1/events?partial=true", json={"events": batch})
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["accepted"], body["rejected"]) == (1, 1)
    assert [r["status"] for r in body["results"]] == ["accepted", "rejected"]
    assert body["results"][1]["errors"][0]["field"] == "timestamp"
    assert sum(log_ends(client).values()) == 1


@pytest.mark.parametrize(
    ("attributes", "words"),
    [
        ({"big": 1180591620717411303424}, "64-bit"),
        ({"note": "x" * 100_000}, "1024"),
        ({f"k{i}": i for i in range(40)}, "at most 32"),
    ],
)
def test_profile_attributes_out_of_bounds_are_a_422_naming_the_field(
    client: TestClient, attributes: dict, words: str
) -> None:
    response = client.put("/v1/users/u1", json={"attributes": attributes})
    assert response.status_code == 422, response.text
    problems = response.json()["problems"]
    assert any(p["field"].startswith("attributes") and words in p["reason"] for p in problems)


@pytest.mark.parametrize("score", [True, "5"])
def test_a_rating_is_not_coerced(client: TestClient, score: object) -> None:
    response = client.post("/v1/events", json=event("rating", score=score))
    assert response.status_code == 422, response.text
    assert response.json()["problems"][0]["field"] == "score"


@pytest.mark.parametrize("user_id", ["jane@example.com", "415-555-2671", "078-05-1120"])
def test_a_pii_shaped_user_id_is_a_422_and_never_logged(client: TestClient, user_id: str) -> None:
    before = log_ends(client)
    response = client.post("/v1/events", json=message(user_id))
    assert response.status_code == 422, response.text
    (problem,) = response.json()["problems"]
    assert problem["field"] == "user_id" and "pseudonymous" in problem["reason"]
    assert user_id not in response.text
    assert log_ends(client) == before


def test_decision_requests_refuse_pii_shaped_ids(tmp_path: Path) -> None:
    save_model(tmp_path)
    with make_client(tmp_path, run_worker_in_server=False) as client:
        _refuse_pii_shaped_decision_ids(client)


def _refuse_pii_shaped_decision_ids(client: TestClient) -> None:
    body = {"user_id": "jane@example.com", "session_id": "s1", "message": "hi"}
    response = client.post("/v1/personalize", json=body)
    assert response.status_code == 422, response.text
    assert response.json()["problems"][0]["field"] == "user_id"
    body = {"decision_id": "d1", "clicked_article_id": "4111111111111111"}
    response = client.post("/v1/feedback", json=body)
    assert response.status_code == 422, response.text
    assert response.json()["problems"][0]["field"] == "clicked_article_id"


def test_a_repeated_event_id_in_one_batch_is_stored_once_and_said_so(client: TestClient) -> None:
    first = message("u1", event_id="e-dup")
    response = client.post("/v1/events", json=[first, message("u2"), first])
    assert response.status_code == 202, response.text
    body = response.json()
    assert (body["accepted"], body["duplicates"], body["rejected"]) == (2, 1, 0)
    repeat = body["results"][2]
    assert repeat["status"] == "duplicate" and repeat["duplicate_of"] == 0
    assert repeat["event_id"] == "e-dup" and "offset" not in repeat
    assert sum(log_ends(client).values()) == 2


def test_a_repeated_event_id_on_other_content_is_rejected(client: TestClient) -> None:
    batch = [message("u1", "hi", event_id="e-x"), message("u1", "bye", event_id="e-x")]
    response = client.post("/v1/events", json=batch)
    assert response.status_code == 422, response.text
    (problem,) = response.json()["problems"]
    assert (problem["index"], problem["field"]) == (1, "event_id")
    assert "repeats the event_id of event 0" in problem["reason"]
    assert sum(log_ends(client).values()) == 0
    partial = client.post("/v1/events?partial=true", json=batch).json()
    assert [r["status"] for r in partial["results"]] == ["accepted", "rejected"]
    assert sum(log_ends(client).values()) == 1


def test_profile_bounds_from_settings_apply_at_the_door(tmp_path: Path) -> None:
    with make_client(
        tmp_path, run_worker_in_server=False, max_profile_attributes=2, max_profile_value_chars=8
    ) as client:
        too_many = client.put("/v1/users/u1", json={"attributes": {"a": 1, "b": 2, "c": 3}})
        assert too_many.status_code == 422, too_many.text
        (problem,) = too_many.json()["problems"]
        assert problem["field"] == "attributes" and "at most 2" in problem["reason"]
        too_long = client.put("/v1/users/u1", json={"attributes": {"a": "123456789"}})
        assert too_long.status_code == 422 and "longer than 8" in too_long.text
        ok = client.put("/v1/users/u1", json={"attributes": {"a": "12345678", "b": 2}})
        assert ok.status_code == 200, ok.text


@pytest.mark.parametrize("path", ["/v1/users/jane@example.com", "/v1/users/078-05-1120/features"])
def test_a_pii_shaped_user_id_in_the_path_is_a_422(client: TestClient, path: str) -> None:
    response = client.put(path, json={}) if path.count("/") == 3 else client.get(path)
    assert response.status_code == 422, response.text
    (problem,) = response.json()["problems"]
    assert problem["field"] == "user_id (path)" and "pseudonymous" in problem["reason"]


@pytest.mark.parametrize(
    ("body", "field"),
    [({"rating": True}, "rating"), ({"rating": "5"}, "rating"), ({"resolved": "yes"}, "resolved")],
)
def test_feedback_values_are_not_coerced(tmp_path: Path, body: dict, field: str) -> None:
    save_model(tmp_path)
    with make_client(tmp_path, run_worker_in_server=False) as client:
        response = client.post("/v1/feedback", json={"decision_id": "d1", **body})
        assert response.status_code == 422, response.text
        assert response.json()["problems"][0]["field"] == field


def test_nul_characters_are_removed_at_the_door(client: TestClient) -> None:
    body = message("u1", "a\u0000b", metadata={"k\u0000": "v\u0000"})
    status = client.post("/v1/events", json=body).json()["results"][0]
    record = client.app.state.runtime.log.read(status["partition"], status["offset"], 1)[0]
    stored = decode_event(record.value)
    assert (stored["text"], stored["metadata"]) == ("ab", {"k": "v"})


KNOWN_ARTICLE = "kb-verify-identity"  # in the bundled knowledge base


@pytest.mark.parametrize(
    "bad_event",
    [
        event("article_viewed", article_id="kb-nope"),
        event("article_feedback", article_id="made-up-1", helpful=True),
        event("resolution", resolved=True, article_id="kb-missing"),
    ],
)
def test_article_ids_must_be_in_the_knowledge_base(client: TestClient, bad_event: dict) -> None:
    response = client.post("/v1/events", json=[bad_event])
    assert response.status_code == 422, response.text
    (problem,) = response.json()["problems"]
    assert problem["field"] == "article_id" and "knowledge base" in problem["reason"]
    ok = dict(bad_event, article_id=KNOWN_ARTICLE)
    assert client.post("/v1/events", json=[ok]).status_code == 202


def test_feedback_article_ids_must_be_in_the_knowledge_base(tmp_path: Path) -> None:
    save_model(tmp_path)
    with make_client(tmp_path, run_worker_in_server=False) as client:
        answer = client.post(
            "/v1/personalize", json={"user_id": "u1", "session_id": "s1", "message": "hello"}
        ).json()
        body = {"decision_id": answer["decision_id"], "clicked_article_id": "kb-invented"}
        response = client.post("/v1/feedback", json=body)
        assert response.status_code == 422, response.text
        assert response.json()["problems"][0]["field"] == "clicked_article_id"
        body["clicked_article_id"] = KNOWN_ARTICLE
        assert client.post("/v1/feedback", json=body).status_code == 200


def test_partial_mode_with_no_valid_event_is_a_422(client: TestClient) -> None:
    response = client.post("/v1/events?partial=true", json=[{}, event("rating", score=9)])
    assert response.status_code == 422, response.text
    assert {p["index"] for p in response.json()["problems"]} == {0, 1}
    assert sum(log_ends(client).values()) == 0
