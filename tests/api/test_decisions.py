"""POST /v1/personalize, POST /v1/feedback, GET /v1/experiment over HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tailorbot.events.codec import decode_event
from tests.api.conftest import make_client
from tests.api.support import wait_until, written_decision
from tests.services.decisions.conftest import SEED, save_model

CARD = "my new card has still not arrived"
TOP_LEVEL = {
    "decision_id",
    "intent",
    "fallback",
    "articles",
    "response",
    "user",
    "experiment_arm",
    "model_versions",
    "timings_ms",
}


@pytest.fixture
def api(tmp_path: Path) -> Iterator[TestClient]:
    """A server with the small intent model and its stream worker running."""
    save_model(tmp_path)
    with make_client(tmp_path, seed=SEED, bandit_sync_s=0.0) as client:
        yield client


def personalize(client: TestClient, user_id: str, message: str = CARD, **body: Any) -> Any:
    return client.post(
        "/v1/personalize", json={"user_id": user_id, "session_id": "s1", "message": message, **body}
    )


def fields_of(response: Any) -> set[str]:
    return {problem["field"] for problem in response.json()["problems"]}


def test_personalize_round_trip(api: TestClient) -> None:
    api.put("/v1/users/ada", json={"name": "Ada", "tier": "gold"})
    response = personalize(api, "ada", context={"channel": "web", "product": "card"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == TOP_LEVEL

    intent = body["intent"]
    assert set(intent) == {"name", "confidence", "ranking", "language", "follow_up"}
    assert intent["name"] == "card_arrival" and 0 < intent["confidence"] <= 1
    assert intent["follow_up"] is None  # the user's first message: nothing to follow
    assert len(intent["ranking"]) == 5
    assert all(set(r) == {"name", "confidence"} for r in intent["ranking"])
    assert body["fallback"] == {"triggered": False, "reason": None}
    assert body["articles"]
    for article in body["articles"]:
        assert set(article) == {"id", "title", "score", "reasons", "url", "snippet"}
        assert article["score"] > 0 and article["reasons"]
        # the bundled KB's kb.yaml names a help centre: every article links below it
        assert article["url"] == f"https://help.tailorbank.example/articles/{article['id']}"
        assert 0 < len(article["snippet"]) <= 300
    response_part = body["response"]
    assert set(response_part) == {"template_id", "variant", "text", "propensity"}
    assert 0 < response_part["propensity"] <= 1
    assert "Ada" in response_part["text"]
    assert body["user"] == {"segment": "vip", "consent": True, "personalized": True}
    assert body["experiment_arm"] == "personalized"
    assert set(body["model_versions"]) == {"intent", "bandit", "kb"}
    assert body["timings_ms"]["total"] >= 0

    decision = written_decision(api, body["decision_id"])
    assert decision["channel"] == "web" and decision["user_id"] == "ada"


def test_metrics_show_the_cpu_of_the_decision_threads(api: TestClient) -> None:
    for i in range(3):
        assert personalize(api, f"cpu-{i}").status_code == 200
    cpu = {
        line.split('"')[1]: float(line.rsplit(" ", 1)[1])
        for line in api.get("/metrics").text.splitlines()
        if line.startswith("tailorbot_thread_cpu_seconds{")
    }
    assert cpu["tailorbot-decision"] > 0  # the pool's threads, summed under one name
    assert "tailorbot-decision-recorder" in cpu


def test_the_message_is_logged_redacted_and_fills_the_features(api: TestClient) -> None:
    email = "ada.l@example.org"
    body = personalize(api, "u-log", f"my card never arrived, mail me at {email}").json()
    runtime = api.app.state.runtime
    written_decision(api, body["decision_id"])  # its message event is appended first
    partition = runtime.log.partition_for("u-log")
    (event,) = [
        decode_event(record.value)
        for record in runtime.log.read_all(partition)
        if record.key == "u-log"
    ]
    assert event["type"] == "message" and event["intent"] == body["intent"]["name"]
    assert email not in event["text"] and "<EMAIL>" in event["text"]
    assert event["metadata"] == {"decision_id": body["decision_id"]}

    def features() -> dict | None:
        response = api.get("/v1/users/u-log/features")
        if response.status_code != 200:
            return None
        found = response.json()["features"]
        return found if body["intent"]["name"] in found["recent_intents"] else None

    assert wait_until(features, "the intent in the user's features")["customer_messages_total"] == 1


def test_without_consent_nothing_personal_is_used(api: TestClient) -> None:
    assert personalize(api, "shy").json()["user"]["personalized"] is True
    api.put("/v1/users/shy", json={"consent": {"personalization": False}})
    body = personalize(api, "shy").json()
    assert body["user"] == {"segment": None, "consent": False, "personalized": False}
    assert written_decision(api, body["decision_id"])["context"] == {}


def test_out_of_scope_falls_back(api: TestClient) -> None:
    body = personalize(api, "u-oos", "what's the weather in Paris tomorrow").json()
    assert body["fallback"] == {"triggered": True, "reason": "out_of_scope"}
    assert body["articles"] == []


def test_feedback_round_trip(api: TestClient) -> None:
    decision = personalize(api, "u-fb").json()
    offered = decision["articles"][0]["id"]
    first = api.post(
        "/v1/feedback",
        json={
            "decision_id": decision["decision_id"],
            "rating": 4,
            "resolved": True,
            "clicked_article_id": offered,
        },
    )
    assert first.status_code == 200, first.text
    assert first.json() == {
        "decision_id": decision["decision_id"],
        "applied": True,
        "reward": pytest.approx((0.5 + 0.4 * 0.75 + 0.1) / 1.0),
    }
    second = api.post("/v1/feedback", json={"decision_id": decision["decision_id"], "rating": 1})
    assert second.json() == {
        "decision_id": decision["decision_id"],
        "applied": False,
        "reward": None,
    }

    report = api.get("/v1/experiment")
    assert report.status_code == 200
    body = report.json()
    assert body["name"] == "default" and body["holdout"] == 0.0
    assert set(body["arms"]) == {"personalized", "control"}
    arm = body["arms"]["personalized"]
    assert arm["feedback"] == 1 and arm["csat"]["mean"] == 4.0
    # One user is one cluster: no interval yet (a user-clustered one needs two).
    assert arm["resolution_rate"]["mean"] == 1.0 and arm["resolution_rate"]["ci95"] is None
    assert body["arms"]["control"]["feedback"] == 0
    assert body["control"] == "channel_language_tier_bandit"
    assert body["csat_lift"] is None


def test_feedback_for_an_unknown_decision_is_404(api: TestClient) -> None:
    response = api.post("/v1/feedback", json={"decision_id": "d-unknown", "rating": 5})
    assert response.status_code == 404
    assert response.json()["error"] == "not_found"
    assert "d-unknown" in response.json()["message"]


BAD_PERSONALIZE = [  # (body, the field the 422 names)
    ({"user_id": "u1", "session_id": "s1"}, "message"),
    ({"user_id": "u1", "session_id": "s1", "message": ""}, "message"),
    ({"user_id": "u1", "session_id": "s1", "message": "hi", "mood": "sad"}, "mood"),
    ({"user_id": "bad id", "session_id": "s1", "message": "hi"}, "user_id"),
    (
        {"user_id": "u1", "session_id": "s1", "message": "hi", "context": {"channel": "A B"}},
        "context.channel",
    ),
]


def test_a_bad_personalize_body_is_422_naming_the_field(api: TestClient) -> None:
    for body, field in BAD_PERSONALIZE:
        response = api.post("/v1/personalize", json=body)
        assert response.status_code == 422, body
        assert response.json()["error"] == "invalid_input"
        assert fields_of(response) == {field}, body
    assert not any(api.app.state.runtime.log.end_offsets().values()), "nothing was logged"


def test_bad_feedback_bodies_are_422(api: TestClient) -> None:
    assert fields_of(api.post("/v1/feedback", json={"rating": 5})) == {"decision_id"}
    rating = api.post("/v1/feedback", json={"decision_id": "d1", "rating": 9})
    assert rating.status_code == 422 and fields_of(rating) == {"rating"}
    extra = api.post("/v1/feedback", json={"decision_id": "d1", "stars": 5})
    assert extra.status_code == 422 and fields_of(extra) == {"stars"}
    empty = api.post("/v1/feedback", json={"decision_id": "d1"})  # no signal at all
    assert empty.status_code == 422
    assert any("no signal" in p["reason"] for p in empty.json()["problems"]), empty.json()
    both = {"decision_id": "d1", "helpful_article_id": "a1", "unhelpful_article_id": "a1"}
    contradiction = api.post("/v1/feedback", json=both)
    assert contradiction.status_code == 422
    assert any("the same article" in p["reason"] for p in contradiction.json()["problems"])


def test_too_long_a_message_is_413(api: TestClient) -> None:
    limit = api.app.state.settings.max_text_chars
    response = personalize(api, "u1", "x" * (limit + 1))
    assert response.status_code == 413
    assert fields_of(response) == {"message"}


def test_503_until_a_model_is_trained(tmp_path: Path) -> None:
    with make_client(tmp_path, run_worker_in_server=False) as client:
        for response in (
            personalize(client, "u1"),
            client.post("/v1/feedback", json={"decision_id": "d1", "rating": 5}),
            client.get("/v1/experiment"),
        ):
            assert response.status_code == 503
            assert response.json()["error"] == "no_model"
            assert "tailorbot train" in response.json()["message"]
        # Training while the server runs is enough: no restart.
        save_model(tmp_path)
        assert personalize(client, "u1").status_code == 200


def test_an_api_key_guards_the_decision_routes(tmp_path: Path) -> None:
    save_model(tmp_path)
    with make_client(tmp_path, api_key="s3cret", run_worker_in_server=False) as client:
        assert personalize(client, "u1").status_code == 401
        wrong = client.get("/v1/experiment", headers={"X-API-Key": "nope"})
        assert wrong.status_code == 403
        ok = client.post(
            "/v1/personalize",
            json={"user_id": "u1", "session_id": "s1", "message": CARD},
            headers={"X-API-Key": "s3cret"},
        )
        assert ok.status_code == 200
        # the key comes before the body, on the lean and the FastAPI routes alike
        for path in ("/v1/personalize", "/v1/feedback"):
            for body in (b"{bad", b'{"decision_id": 7}'):
                for key, status in ((None, 401), ("nope", 403)):
                    headers = {"content-type": "application/json"}
                    headers |= {"X-API-Key": key} if key else {}
                    refused = client.post(path, content=body, headers=headers)
                    assert refused.status_code == status, (path, body, key, refused.text)


def test_the_openapi_schema_documents_the_decision_routes(api: TestClient) -> None:
    paths = api.get("/openapi.json").json()["paths"]
    assert set(paths["/v1/personalize"]["post"]["responses"]) >= {"200", "422", "503"}
    assert "404" in paths["/v1/feedback"]["post"]["responses"]
    assert "get" in paths["/v1/experiment"]
