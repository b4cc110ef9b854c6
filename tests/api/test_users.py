from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from tests.api.conftest import log_ends, make_client
from tests.api.support import event, message, wait_until, written_decision
from tests.services.decisions.conftest import SEED, save_model


def _fresh_features(client: TestClient, user_id: str, offset: int) -> dict | None:
    """The features once the worker applied the event at ``offset`` (None before)."""
    response = client.get(f"/v1/users/{user_id}/features")
    if response.status_code != 200:
        return None
    body = response.json()
    return body if body["freshness"]["offset"] >= offset else None


def test_features_round_trip_through_the_worker(live_client: TestClient) -> None:
    batch = [
        event("session_started", "alice"),
        message("alice", "my card has not arrived", intent="card_arrival"),
        event("rating", "alice", score=2),
    ]
    last = live_client.post("/v1/events", json={"events": batch}).json()["results"][-1]
    body = wait_until(lambda: _fresh_features(live_client, "alice", last["offset"]), "features")
    assert body["user_id"] == "alice"
    assert body["freshness"]["partition"] == last["partition"]
    assert body["freshness"]["event_time"].endswith("Z")
    assert body["freshness"]["updated_at"].endswith("Z")
    assert body["features"]["recent_intents"] == ["card_arrival"]
    assert body["features"]["events_1h"] == 3


def test_unknown_user_is_404(client: TestClient) -> None:
    response = client.get("/v1/users/nobody/features")
    assert response.status_code == 404
    assert response.json()["error"] == "not_found"
    assert "no features for user 'nobody'" in response.json()["message"]


def test_invalid_user_id_in_the_path_is_422(client: TestClient) -> None:
    response = client.get("/v1/users/bad%20id/features")
    assert response.status_code == 422
    assert response.json()["problems"][0]["field"] == "user_id (path)"


def test_put_profile_and_validation(client: TestClient) -> None:
    profile = {"tier": "gold", "language": "de", "products": ["card"]}
    response = client.put("/v1/users/u1", json=profile)
    assert response.status_code == 200
    assert response.json()["profile"]["tier"] == "gold"
    assert client.app.state.runtime.stores.profiles.get("u1")["language"] == "de"

    bad = client.put("/v1/users/u1", json={"tier": "", "consent": {"personalization": "maybe"}})
    assert bad.status_code == 422
    fields = {p["field"] for p in bad.json()["problems"]}
    assert fields == {"tier", "consent.personalization"}
    broken = client.put(
        "/v1/users/u1", content=b"{tier:", headers={"content-type": "application/json"}
    )
    assert broken.status_code == 400 and "not valid JSON" in broken.json()["message"]
    assert client.app.state.runtime.stores.profiles.get("u1")["tier"] == "gold"


def test_withdrawing_consent_deletes_the_feature_record(live_client: TestClient) -> None:
    last = live_client.post("/v1/events", json=message("bob")).json()["results"][0]
    wait_until(lambda: _fresh_features(live_client, "bob", last["offset"]), "features")
    response = live_client.put("/v1/users/bob", json={"consent": {"personalization": False}})
    assert response.status_code == 200
    assert live_client.get("/v1/users/bob/features").status_code == 404
    profile = live_client.app.state.runtime.stores.profiles.get("bob")
    assert profile["consent"]["personalization"] is False
    # New events of the user are logged but build no features while consent is withheld.
    newer = live_client.post("/v1/events", json=message("bob")).json()["results"][0]
    runtime = live_client.app.state.runtime
    wait_until(
        lambda: (
            runtime.log.committed(runtime.settings.consumer_group).get(newer["partition"], 0)
            > newer["offset"]
        ),
        "the worker to pass the new event",
    )
    assert live_client.get("/v1/users/bob/features").status_code == 404


def test_withdrawing_consent_erases_decisions_made_before_any_features(tmp_path: Path) -> None:
    save_model(tmp_path)
    # no stream worker: the user's decision exists, a feature record never will
    with make_client(tmp_path, run_worker_in_server=False, seed=SEED) as client:
        body = {"user_id": "erin", "session_id": "s1", "message": "my card has not arrived"}
        decision_id = client.post("/v1/personalize", json=body).json()["decision_id"]
        runtime = client.app.state.runtime
        written_decision(client, decision_id)
        assert runtime.stores.features.get("erin") is None
        response = client.put("/v1/users/erin", json={"consent": {"personalization": False}})
        assert response.status_code == 200
        assert runtime.stores.decisions.get(decision_id) is None
        # A withdrawal is no erasure: a watermark, but no erasure time (which would drop the
        # user's late events from the archive, whose analytics consent still stands) ...
        assert runtime.stores.features.erasures(["erin"])["erin"].erased_at == 0.0
        # ... while DELETE /v1/users dates its erasure.
        assert client.delete("/v1/users/erin").status_code == 204
        assert runtime.stores.features.erasures(["erin"])["erin"].erased_at > 0.0


def test_delete_user_erases_log_records_and_features(live_client: TestClient) -> None:
    runtime = live_client.app.state.runtime
    live_client.put("/v1/users/carol", json={"tier": "gold"})
    last = live_client.post("/v1/events", json=[message("carol"), message("dave")]).json()
    carol = last["results"][0]
    wait_until(lambda: _fresh_features(live_client, "carol", carol["offset"]), "features")
    ends = log_ends(live_client)
    assert live_client.delete("/v1/users/carol").status_code == 204
    assert live_client.get("/v1/users/carol/features").status_code == 404
    assert runtime.stores.profiles.get("carol") is None
    remaining = runtime.log.read_all(carol["partition"])
    assert all(record.key != "carol" for record in remaining)
    assert log_ends(live_client) == ends  # offsets are never reused
    assert live_client.delete("/v1/users/carol").status_code == 204  # idempotent
    assert live_client.delete("/v1/users/never-seen").status_code == 204
