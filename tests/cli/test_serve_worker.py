"""`tailorbot serve` runs the stream worker in a process of its own, supervised: its metrics
appear in the API's /metrics, its state in /readyz, and a killed worker comes back."""

from __future__ import annotations

import errno
import os
import signal
import socket
from pathlib import Path

import httpx
import pytest

from tailorbot.config import Settings
from tailorbot.log import open_log
from tests.api.support import message, wait_until
from tests.cli.test_cli import START_S, _healthy, _start, _stop
from tests.helpers import http, listening_sockets, socket_inodes
from tests.integration.cluster import live_members


def _children(pid: int) -> list[int]:
    """Child process ids of ``pid`` (from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat[stat.rindex(")") + 2 :].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def _status(url: str) -> int | None:
    """The status of a GET, or None while the server is too busy to answer (a loaded CI box:
    a generous bound, and the caller waits again)."""
    try:
        return http().get(url, timeout=30).status_code
    except httpx.HTTPError:
        return None


def _applied(url: str) -> float:
    for line in http().get(url + "/metrics", timeout=10).text.splitlines():
        if line.startswith("tailorbot_events_applied_total "):
            return float(line.split()[-1])
    return 0.0


def test_the_worker_runs_in_its_own_process_and_comes_back_when_killed(
    tmp_path: Path, port: int
) -> None:
    process = _start(["serve", "--port", str(port)], tmp_path)
    url = f"http://127.0.0.1:{port}"
    settings = Settings.load(data_dir=tmp_path)
    log = open_log(settings.resolved_log_url(), settings.partitions)
    try:
        wait_until(lambda: _healthy(url) or process.poll() is not None, "the server", START_S)
        assert process.poll() is None
        ready = wait_until(
            lambda: (
                (r := http().get(url + "/readyz", timeout=5).json())["checks"]["worker"]
                == "running (own process)"
                and r
            ),
            "the worker process in /readyz",
        )
        # the backends answer; ready only once a model is trained (none in this test)
        assert ready["checks"]["log"] == ready["checks"]["store"] == "ok"
        assert ready["checks"]["intent_model"].startswith("missing")
        (worker,) = _children(process.pid)

        assert (
            http().post(url + "/v1/events", json=[message("p-u1")], timeout=10).status_code == 202
        )
        wait_until(lambda: _applied(url) >= 1, "the worker's applied count in the API's /metrics")
        # and the API's own families beside the worker's (its registry has them too, empty)
        exposition = http().get(url + "/metrics", timeout=10).text
        assert 'tailorbot_events_ingested_total{type="message"} 1.0' in exposition
        assert 'tailorbot_responses_total{route="/v1/events",status="202"} 1.0' in exposition
        (name,) = live_members(log, settings.consumer_group)

        metrics_port = _worker_metrics_port(process.pid, port)
        os.kill(worker, signal.SIGKILL)
        wait_until(lambda: not _children(process.pid) or _zombie(worker), "the worker's end")
        # no worker runs, and still no other process can take its metrics port
        with socket.socket() as other, pytest.raises(OSError) as taken:
            other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            other.bind(("127.0.0.1", metrics_port))
        assert taken.value.errno == errno.EADDRINUSE
        wait_until(
            lambda: (kids := _children(process.pid)) and kids != [worker],
            "the supervisor to start a new worker",
        )
        assert (
            http().post(url + "/v1/events", json=[message("p-u2")], timeout=10).status_code == 202
        )
        wait_until(
            lambda: _status(url + "/v1/users/p-u2/features") == 200,
            "the new worker to apply the next event",
        )
        # on the port the supervisor holds for every child: the new worker's own count
        wait_until(lambda: _applied(url) >= 1, "the new worker's metrics in the API's /metrics")
        # It joined under the dead one's name and took its partitions back at once: under a
        # name of its own it would have shared the group with the dead member until that
        # one's session (10 s) lapsed, or be alone under another name after.
        assert live_members(log, settings.consumer_group) == [name]
    finally:
        log.close()
        code, output = _stop(process)
    assert code == 0, output
    assert "Traceback" not in output


def test_a_server_killed_outright_takes_its_worker_down(tmp_path: Path, port: int) -> None:
    """SIGKILL leaves no time to stop the worker: the kernel signals it (PR_SET_PDEATHSIG)."""
    process = _start(["serve", "--port", str(port)], tmp_path)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: _healthy(url) or process.poll() is not None, "the server", START_S)
        (worker,) = wait_until(lambda: _children(process.pid), "the worker process")
        process.kill()
        process.wait(timeout=30)
        wait_until(lambda: not Path(f"/proc/{worker}").exists() or _zombie(worker),
                   "the orphaned worker to stop")  # fmt: skip
    finally:
        _stop(process)


def _worker_metrics_port(pid: int, api_port: int) -> int:
    """The port ``pid`` (the server) listens on besides the API's: the one it hands its
    worker."""
    held = socket_inodes(pid)
    (found,) = {port for _, inode, port in listening_sockets() if inode in held} - {api_port}
    return found


def _zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat[stat.rindex(")") + 2] == "Z"
