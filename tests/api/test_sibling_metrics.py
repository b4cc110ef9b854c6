"""``/metrics`` of one process of ``serve --workers N``: the sum of its siblings' and its own
(the processes themselves: tests/cli/test_cli.py; the parts: tests/telemetry)."""

from __future__ import annotations

import os
import socket
from pathlib import Path

from tailorbot.metrics import Metrics
from tailorbot.telemetry.siblings import SiblingExposition
from tests.api.conftest import make_client
from tests.api.support import message


def test_metrics_sum_this_process_and_its_siblings(tmp_path: Path) -> None:
    folder = tmp_path / "siblings"
    folder.mkdir(mode=0o700)
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


def test_a_silent_sibling_makes_metrics_unavailable_not_a_partial_sum(tmp_path: Path) -> None:
    folder = tmp_path / "siblings"
    folder.mkdir(mode=0o700)
    silent = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)  # accepts, never answers
    silent.bind(str(folder / f"{os.getpid()}-1.sock"))
    silent.listen(4)
    try:
        with make_client(tmp_path, run_worker_in_server=False, metrics_siblings_dir=folder) as c:
            response = c.get("/metrics")
    finally:
        silent.close()
    assert response.status_code == 503
    assert f"{os.getpid()}-1 did not answer" in response.text


def test_a_process_that_cannot_join_its_siblings_serves_with_metrics_unavailable(
    tmp_path: Path,
) -> None:
    gone = tmp_path / "removed-under-the-server"
    with make_client(tmp_path, run_worker_in_server=False, metrics_siblings_dir=gone) as c:
        assert c.get("/healthz").status_code == 200
        response = c.get("/metrics")
    assert response.status_code == 503
    assert "could not join its siblings" in response.text
