"""``/metrics`` of one process of ``serve --workers N``: the sum of its siblings' and its own
(the processes themselves: tests/cli/test_cli.py; the parts: tests/telemetry)."""

from __future__ import annotations

import math
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tailorbot.metrics import Metrics
from tailorbot.models.drift import psi
from tailorbot.runtime import Runtime
from tailorbot.telemetry.siblings import SiblingExposition
from tests.api.conftest import make_client
from tests.api.support import event, message
from tests.helpers import read_siblings, silent_sibling
from tests.services.decisions.conftest import save_model


@pytest.fixture
def folder() -> Iterator[Path]:
    """A folder as `serve` makes it: private, and short (a Unix socket's path is at most
    107 bytes; pytest's tmp_path can be longer)."""
    with tempfile.TemporaryDirectory(prefix="tb-siblings-") as made:
        yield Path(made)


def test_metrics_sum_this_process_and_its_siblings(tmp_path: Path, folder: Path) -> None:
    sibling = Metrics()
    sibling.events_ingested.labels(type="message").inc(5)
    other = SiblingExposition(folder, sibling.render)
    try:
        with make_client(tmp_path, run_worker_in_server=False, metrics_siblings_dir=folder) as c:
            c.post("/v1/events", json=[message(), message()])
            text = c.get("/metrics").text
            assert len(list(folder.glob("*.sock"))) == 2  # the app's own and the sibling's
    finally:
        other.close()
    assert 'tailorbot_events_ingested_total{type="message"} 7.0' in text
    assert 'tailorbot_server_processes{state="answered"} 2.0' in text
    assert not list(folder.glob("*.sock"))  # the app left its socket on the way out


def test_the_dashboard_shows_the_sum_of_the_processes(tmp_path: Path, folder: Path) -> None:
    sibling = Metrics()
    sibling.decisions.labels(outcome="answered").inc(5)
    sibling.decisions.labels(outcome="fallback").inc(2)
    sibling.observe_decision(
        "card_arrival", 0.9, 30, None, "personalized", "concise", explored=True
    )
    sibling.events_ingested.labels(type="handoff").inc(3)
    sibling.request_latency.labels(route="/v1/personalize").observe(0.004)
    other = SiblingExposition(folder, sibling.render)
    try:
        with make_client(tmp_path, run_worker_in_server=False, metrics_siblings_dir=folder) as c:
            c.post("/v1/events", json=[event("handoff", reason="asked for a person")])
            c.app.state.dashboard.min_step_s = 0.0  # each poll takes a snapshot
            first = c.get("/v1/dashboard/data").json()
            sibling.decisions.labels(outcome="answered").inc(3)
            sibling.observe_decision(
                "card_arrival", 0.9, 30, None, "personalized", "concise", explored=False
            )
            sibling.request_latency.labels(route="/v1/personalize").observe(0.004)
            data = c.get("/v1/dashboard/data").json()
    finally:
        other.close()
    assert first["totals"] == {"decisions": 7.0, "fallbacks": 2.0, "handoffs": 4.0, "feedback": 0}
    assert data["totals"]["decisions"] == 10.0
    assert data["intents"] == [{"name": "card_arrival", "count": 1.0}]  # since the first poll
    point = data["series"][-1]
    assert point["variant_shares"] == {"concise": 1.0}
    assert point["exploration_rate"] == 0.0
    assert 2.5 <= point["latency_ms"]["p50"] <= 5.0  # the sibling's request, in its bucket


def test_the_drift_is_that_of_the_summed_decisions(tmp_path: Path, folder: Path) -> None:
    """Each process's own drift is measured on its share of the decisions; the server's is
    the PSI of the summed counts since the first scrape (here: the sibling's 60 decisions
    and this process's one, where each process alone has fewer than the 50 a PSI needs)."""
    save_model(tmp_path)
    sibling = Metrics()
    sibling.observe_decision("change_pin", 0.6, 25, None, "control", "concise", explored=False)
    other = SiblingExposition(folder, sibling.render)
    try:
        with make_client(tmp_path, run_worker_in_server=False, metrics_siblings_dir=folder) as c:
            asked = {"user_id": "u1", "session_id": "s1", "message": "my card has not arrived"}
            assert c.post("/v1/personalize", json=asked).status_code == 200
            runtime = c.app.state.runtime
            reference = c.app.state.decider.models.metadata["reference"]
            first = c.get("/metrics").text  # the window starts here, not at `serve`'s start
            for _ in range(30):
                sibling.observe_decision(
                    "card_arrival", 0.95, 40, None, "personalized", "concise", explored=False
                )
                sibling.observe_decision(
                    "change_pin", 0.6, 25, None, "control", "concise", explored=False
                )
            assert c.post("/v1/personalize", json=asked).status_code == 200
            text = c.get("/metrics").text
            at_first = runtime.server_drift.counts_in(text_string_to_metric_families(first))
            now = runtime.server_drift.counts_in(text_string_to_metric_families(text))
            own = runtime.drift.last
            data = c.get("/v1/dashboard/data").json()
    finally:
        other.close()
    assert 'tailorbot_drift_psi{feature="intent"} NaN' in first  # 2 decisions so far
    window = {k: v - at_first["intent"].get(k, 0.0) for k, v in now["intent"].items()}
    window = {k: v for k, v in window.items() if v > 0}
    assert sum(window.values()) == 61
    assert math.isnan(own["intent"])  # this process's 2 decisions: too few
    expected = psi(window, reference["intent"])
    assert f'tailorbot_drift_psi{{feature="intent"}} {expected!r}' in text
    assert data["drift"]["intent"] == expected and data["drift_window"] == 61


@pytest.mark.parametrize("route", ["/metrics", "/v1/dashboard/data"])
def test_a_silent_sibling_makes_the_figures_unavailable_not_a_partial_sum(
    tmp_path: Path, folder: Path, route: str
) -> None:
    with (
        silent_sibling(folder) as name,
        make_client(tmp_path, run_worker_in_server=False, metrics_siblings_dir=folder) as c,
    ):
        response = c.get(route)
    assert response.status_code == 503
    assert f"{name} did not answer" in response.text


def test_a_process_that_cannot_join_its_siblings_serves_with_metrics_unavailable(
    tmp_path: Path,
) -> None:
    gone = tmp_path / "removed-under-the-server"
    with make_client(tmp_path, run_worker_in_server=False, metrics_siblings_dir=gone) as c:
        assert c.get("/healthz").status_code == 200
        response = c.get("/metrics")
    assert response.status_code == 503
    assert "could not join its siblings" in response.text


def test_a_process_that_cannot_make_its_socket_makes_its_siblings_answer_503(
    tmp_path: Path, folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:

    def refused(*args: object) -> None:
        raise OSError("no socket for this process")

    monkeypatch.setattr(SiblingExposition, "__init__", refused)
    with make_client(tmp_path, run_worker_in_server=False, metrics_siblings_dir=folder) as c:
        assert c.get("/metrics").status_code == 503
        unjoined = list(folder.glob("*.unjoined"))
        monkeypatch.undo()
        found = read_siblings(folder)  # another process's read
    assert len(unjoined) == 1 and found.silent == [unjoined[0].name.removesuffix(".unjoined")]


def test_a_failing_shutdown_still_folds_this_process_counts(
    tmp_path: Path, folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken_stop(self: object) -> None:
        raise RuntimeError("a backend refused to close")

    monkeypatch.setattr(Runtime, "stop", broken_stop)
    with (
        pytest.raises(RuntimeError, match="refused to close"),
        make_client(tmp_path, run_worker_in_server=False, metrics_siblings_dir=folder) as c,
    ):
        c.post("/v1/events", json=[message()])
    monkeypatch.undo()
    assert not list(folder.glob("*.sock"))
    found = read_siblings(folder)
    assert found.ended == 1
    assert 'tailorbot_events_ingested_total{type="message"} 1.0' in found.expositions[0].text
