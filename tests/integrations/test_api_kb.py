"""The live KB over HTTP: changed through one server process, served by every one."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.api.conftest import make_client
from tests.api.support import wait_until
from tests.services.decisions.conftest import SEED, save_model

JSON_TYPE = {"content-type": "application/json"}

ARTICLE = {
    "title": "Your card in a parcel locker",
    "body": "Cards can now be picked up from any parcel locker near you.",
    "intents": ["card_arrival"],
    "tags": ["card"],
    "url": "https://tailorbank.example/lockers",
}


@pytest.fixture
def two_servers(tmp_path: Path) -> Iterator[tuple[TestClient, TestClient]]:
    """Two server processes' apps over one data directory (as two uvicorn workers)."""
    save_model(tmp_path)
    options = {"seed": SEED, "bandit_sync_s": 0.0, "kb_poll_s": 0.1}
    with (
        make_client(tmp_path, **options) as one,
        make_client(tmp_path, run_worker_in_server=False, **options) as other,
    ):
        yield one, other


def article_ids(client: TestClient, message: str = "where is my card, it has not arrived") -> list:
    answer = client.post(
        "/v1/personalize", json={"user_id": "u1", "session_id": "s1", "message": message}
    )
    assert answer.status_code == 200, answer.text
    return [a["id"] for a in answer.json()["articles"]]


def test_a_change_reaches_every_process_without_a_restart(
    two_servers: tuple[TestClient, TestClient],
) -> None:
    one, other = two_servers
    version = one.get("/v1/kb").json()["version"]
    put = one.put("/v1/kb/articles/kb-card-locker", json=ARTICLE)
    assert put.status_code == 200, put.text
    assert put.json() == {"id": "kb-card-locker", "version": version + 1}
    assert one.get("/v1/kb/articles/kb-card-locker").json() == {"id": "kb-card-locker", **ARTICLE}
    assert "kb-card-locker" in article_ids(one)  # the process that made the change: at once
    wait_until(lambda: "kb-card-locker" in article_ids(other), "the other process to serve it")
    versions = other.post(
        "/v1/personalize", json={"user_id": "u2", "session_id": "s", "message": "card?"}
    ).json()["model_versions"]
    assert versions["kb"] == f"live-v{version + 1}"

    deleted = other.delete("/v1/kb/articles/kb-card-locker")
    assert deleted.status_code == 200 and deleted.json()["version"] == version + 2
    wait_until(lambda: "kb-card-locker" not in article_ids(one), "the deletion to reach one")
    assert one.get("/v1/kb/articles/kb-card-locker").status_code == 404


def test_templates_and_the_brand(two_servers: tuple[TestClient, TestClient]) -> None:
    one, _ = two_servers
    template = one.get("/v1/kb/templates/tpl-card-arrival")
    assert template.status_code == 200
    body = template.json()
    body["variants"] = {name: "{brand} says hi, {name}." for name in body["variants"]}
    assert one.put("/v1/kb/templates/tpl-card-arrival", json=body).status_code == 200
    one.put("/v1/users/u1", json={"name": "Ada"})
    answer = one.post(
        "/v1/personalize",
        json={"user_id": "u1", "session_id": "s1", "message": "my card has not arrived yet"},
    ).json()
    assert answer["response"]["template_id"] == "tpl-card-arrival"
    assert answer["response"]["text"] == "Tailor Bank says hi, Ada."


def test_invalid_changes_are_refused_like_kb_check(
    two_servers: tuple[TestClient, TestClient],
) -> None:
    one, _ = two_servers
    version = one.get("/v1/kb").json()["version"]
    bad = one.put("/v1/kb/articles/kb-x", json={**ARTICLE, "title": "", "url": "ftp://x"})
    assert bad.status_code == 422
    assert {p["field"] for p in bad.json()["problems"]} == {
        "articles[kb-x].title",
        "articles[kb-x].url",
    }
    referenced = one.delete("/v1/kb/articles/kb-card-arrival")
    assert referenced.status_code == 422
    assert "unknown article 'kb-card-arrival'" in referenced.json()["problems"][0]["reason"]
    template = {"intents": ["card_arrival"], "variants": {"concise": "{oops}"}}
    assert one.put("/v1/kb/templates/t-x", json=template).status_code == 422
    assert one.put("/v1/kb/faqs/x", json=ARTICLE).status_code == 422  # not a KB section
    not_an_object = one.put("/v1/kb/articles/kb-x", content=b"[1]", headers=JSON_TYPE)
    assert not_an_object.status_code == 422
    assert one.delete("/v1/kb/articles/nope").status_code == 404
    # The decision service needs a default template: removing it, or its flag, is refused.
    removed = one.delete("/v1/kb/templates/tpl-default")
    assert removed.status_code == 422, removed.text
    assert removed.json()["problems"] == [
        {
            "index": None,
            "field": "templates",
            "reason": "no default template (default: true): intents without a template of "
            "their own need it for their reply",
        }
    ]
    unflagged = one.put("/v1/kb/templates/tpl-default", json={"variants": {"concise": "Hi"}})
    assert unflagged.status_code == 422, unflagged.text
    assert one.get("/v1/kb").json()["version"] == version
    assert one.get("/v1/kb/templates/tpl-default").json()["default"] is True
    assert one.get("/readyz").status_code == 200


def test_kb_routes_need_the_api_key(tmp_path: Path) -> None:
    with make_client(tmp_path, api_key="k", run_worker_in_server=False) as client:
        assert client.put("/v1/kb/articles/a", json=ARTICLE).status_code == 401
        assert client.get("/v1/kb", headers={"X-API-Key": "k"}).status_code == 200


def test_a_kb_with_its_own_brand_and_variants(tmp_path: Path) -> None:
    """The telecom example KB served: its brand, placeholders and variant names (the bandit's
    arms) reach the replies."""
    save_model(tmp_path)
    kb_dir = Path(__file__).resolve().parents[2] / "examples" / "telecom" / "kb"
    with make_client(tmp_path, seed=SEED, bandit_sync_s=0.0, kb_dir=kb_dir) as client:
        client.put("/v1/users/ada", json={"name": "Ada", "attributes": {"plan": "Unlimited 5G"}})
        variants = set()
        for i in range(12):
            answer = client.post(
                "/v1/personalize",
                json={"user_id": "ada", "session_id": f"s{i}", "message": "tell me a joke"},
            ).json()
            variants.add(answer["response"]["variant"])
            assert "Tailor Telecom" in answer["response"]["text"]  # the fallback's hand-over
            decision_id = answer["decision_id"]
            assert client.post("/v1/feedback", json={"decision_id": decision_id, "rating": 4})
        assert variants <= {"brief", "guided", "warm"} and variants
        assert client.get("/v1/kb").json()["brand"] == "Tailor Telecom"
