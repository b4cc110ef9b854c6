"""``/dashboard`` and ``/v1/dashboard/data``: the key protects them, the data is aggregated."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tailorbot.api.routers.dashboard import COOKIE
from tests.api.conftest import make_client
from tests.services.decisions.conftest import save_model

KEY = "dash-key"


@pytest.fixture
def keyed(tmp_path: Path) -> Iterator[TestClient]:
    save_model(tmp_path)
    with make_client(
        tmp_path, run_worker_in_server=True, api_key=KEY, experiment_holdout=0.5, seed=1
    ) as client:
        yield client


def test_without_the_key_the_page_asks_for_it_and_the_data_is_refused(keyed: TestClient) -> None:
    page = keyed.get("/dashboard", follow_redirects=False)
    assert page.status_code == 303 and page.headers["location"] == "/dashboard/login"
    assert 'name="key"' in keyed.get("/dashboard/login").text
    data = keyed.get("/v1/dashboard/data")
    assert data.status_code == 401
    assert "X-API-Key" in data.json()["message"]
    assert keyed.get("/dashboard/static/charts.js").status_code == 401
    wrong = keyed.post("/dashboard/login", content=b"key=nope", follow_redirects=False)
    assert wrong.status_code == 403 and COOKIE not in wrong.cookies


def test_signing_in_sets_a_cookie_that_is_not_the_key(keyed: TestClient) -> None:
    signed = keyed.post("/dashboard/login", content=f"key={KEY}".encode(), follow_redirects=False)
    assert signed.status_code == 303
    cookie = signed.cookies[COOKIE]
    assert cookie and KEY not in cookie
    assert "httponly" in signed.headers["set-cookie"].lower()
    assert "samesite=strict" in signed.headers["set-cookie"].lower()
    assert keyed.get("/dashboard").status_code == 200  # the client keeps the cookie
    assert (
        keyed.get("/dashboard/static/dashboard.js")
        .headers["content-type"]
        .startswith("text/javascript")
    )
    assert keyed.get("/v1/dashboard/data").status_code == 200
    keyed.cookies.clear()
    assert keyed.get("/v1/dashboard/data", headers={"X-API-Key": KEY}).status_code == 200


@pytest.mark.parametrize("name", ["../app.py", "dashboard.html", "nope.js", "x.py"])
def test_only_the_shipped_assets_are_served(keyed: TestClient, name: str) -> None:
    response = keyed.get(f"/dashboard/static/{name}", headers={"X-API-Key": KEY})
    assert response.status_code in (404, 422)


def test_the_data_counts_what_the_decisions_did(keyed: TestClient) -> None:
    headers = {"X-API-Key": KEY}
    first = keyed.get("/v1/dashboard/data", headers=headers).json()
    assert first["series"] == []  # one snapshot: no interval yet
    for i in range(8):
        decided = keyed.post(
            "/v1/personalize",
            json={"user_id": f"u{i}", "session_id": "s", "message": "my card has not arrived"},
            headers=headers,
        ).json()
        keyed.post(
            "/v1/feedback",
            json={"decision_id": decided["decision_id"], "rating": 4, "resolved": True},
            headers=headers,
        )
    keyed.app.state.dashboard.min_step_s = 0.0  # the next poll takes a new snapshot
    data = keyed.get("/v1/dashboard/data", headers=headers).json()
    assert data["totals"]["decisions"] == 8
    assert data["totals"]["feedback"] == 8
    assert data["intents"][0] == {"name": "card_arrival", "count": 8.0}
    point = data["series"][-1]
    assert point["decisions_per_s"] > 0
    assert point["latency_ms"]["p50"] is not None
    assert math.isclose(sum(point["variant_shares"].values()), 1.0)
    arms = data["experiment"]["arms"]
    assert arms["personalized"]["feedback"] + arms["control"]["feedback"] == 8
    assert data["models"]["versions"]["intent"]
    assert data["drift"]["intent"] is None  # fewer than 50 decisions: too few to tell
    assert data["drift_reference"] is True
