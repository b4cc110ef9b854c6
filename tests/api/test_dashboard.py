"""``/dashboard`` and ``/v1/dashboard/data``: the key protects them, the data is aggregated
(from this process's figures, or from the sum of a multi-process server's: see also
tests/api/test_sibling_metrics.py)."""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tailorbot.api.dashboard import DashboardData
from tailorbot.api.routers.dashboard import COOKIE
from tailorbot.errors import Unavailable
from tailorbot.metrics import Metrics
from tailorbot.telemetry.process_sum import summed_families
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


def test_the_step_setting_paces_the_snapshots_and_tells_the_page(tmp_path: Path) -> None:
    """``dashboard_step_s`` is both the server's snapshot step and the data's ``poll_s``,
    the interval the page polls at."""
    with make_client(tmp_path, dashboard_step_s=60.0) as client:
        first = client.get("/v1/dashboard/data").json()
        client.app.state.metrics.decisions.labels(outcome="answered").inc()
        again = client.get("/v1/dashboard/data").json()
    assert first["poll_s"] == again["poll_s"] == 60.0
    assert first["totals"]["decisions"] == again["totals"]["decisions"] == 0  # one snapshot


def _decided(metrics: Metrics, n: int) -> Metrics:
    for _ in range(n):
        metrics.observe_decision("card_arrival", 0.9, 30, None, "personalized", "concise",
                                 explored=False)  # fmt: skip
        metrics.decisions.labels(outcome="answered").inc()
        metrics.request_latency.labels(route="/v1/personalize").observe(0.004)
    return metrics


def test_a_process_leaving_the_sum_with_its_counts_is_a_reset_not_a_negative_rate() -> None:
    a, b = _decided(Metrics(), 30), _decided(Metrics(), 50)
    processes = [a, b]

    def read() -> list[Any]:  # the sum of the processes alive, as /metrics makes it
        return summed_families([m.render().decode() for m in processes])

    data = DashboardData(Metrics(), read, min_step_s=0.0)
    assert data.snapshot()["totals"]["decisions"] == 80
    _decided(a, 5)
    assert data.snapshot()["series"][-1]["decisions_per_s"] > 0
    processes.remove(b)  # killed outright: its 50 leave the sum
    _decided(a, 2)
    after = data.snapshot()
    assert after["totals"]["decisions"] == 37
    assert after["series"] == []  # the history starts again here
    _decided(a, 3)
    point = data.snapshot()["series"][-1]
    assert point["decisions_per_s"] > 0 and point["latency_ms"]["p50"] is not None


def test_a_failed_read_is_not_tried_again_by_each_poll_meanwhile() -> None:
    calls = []

    def read() -> list[Any]:
        calls.append(time.monotonic())
        raise Unavailable("server processes 7-1 did not answer for their metrics within 2 s")

    data = DashboardData(Metrics(), read, min_step_s=60.0)
    for _ in range(3):
        with pytest.raises(Unavailable, match="7-1 did not answer"):
            data.snapshot()
    assert len(calls) == 1
