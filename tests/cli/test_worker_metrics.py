"""`tailorbot worker --metrics-port`: a standalone worker serves its own Prometheus metrics;
with ``--metrics-fd`` (what `tailorbot serve` gives its worker) on a socket it inherits."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import httpx

from tailorbot.config import Settings
from tailorbot.runtime import Runtime
from tests.helpers import http, listening_sockets, wait_until

CLI = Path(sys.executable).parent / "tailorbot"


def _listening_address(port: int) -> str | None:
    """The local IPv4 address a socket listens on at ``port``."""
    for address, _, _ in listening_sockets(port):
        if len(address) == 8:  # IPv4, little-endian hex
            return ".".join(str(int(address[i : i + 2], 16)) for i in (6, 4, 2, 0))
    return None


def _runtime_with_one_event(data_dir: Path) -> Runtime:
    """A runtime on ``data_dir`` whose log holds one event for a worker to apply."""
    runtime = Runtime(Settings.load(data_dir=data_dir, run_worker_in_server=False))
    now = datetime.now(UTC).isoformat()
    runtime.ingestion.ingest(
        [{"type": "session_started", "user_id": "u1", "session_id": "s1", "timestamp": now}]
    )
    return runtime


def _wait_for_the_applied_event(port: int, what: str) -> None:
    def applied() -> bool:
        try:
            text = http().get(f"http://127.0.0.1:{port}/metrics", timeout=1).text
        except httpx.HTTPError:
            return False
        return "tailorbot_events_applied_total 1.0" in text

    wait_until(applied, what, limit_s=30)


def test_standalone_worker_exposes_what_it_applied(tmp_path: Path, port: int) -> None:
    runtime = _runtime_with_one_event(tmp_path)
    # the API's host is public here; the worker's metrics must stay on loopback by default
    env = {**os.environ, "TAILORBOT_HOST": "0.0.0.0"}
    proc = subprocess.Popen(
        [str(CLI), "worker", "--data-dir", str(tmp_path), "--metrics-port", str(port)],
        stdout=subprocess.DEVNULL,
        env=env,
    )
    try:
        _wait_for_the_applied_event(port, "the worker's metrics to show the applied event")
        assert _listening_address(port) == "127.0.0.1"
    finally:
        proc.terminate()
        proc.wait(timeout=15)
        runtime.stop()


def test_worker_serves_its_metrics_on_an_inherited_socket(tmp_path: Path) -> None:
    runtime = _runtime_with_one_event(tmp_path)
    with socket.create_server(("127.0.0.1", 0)) as held:  # as the supervisor holds it
        port, fd = held.getsockname()[1], held.fileno()
        proc = subprocess.Popen(
            [str(CLI), "worker", "--data-dir", str(tmp_path), "--metrics-fd", str(fd)],
            stdout=subprocess.DEVNULL,
            pass_fds=(fd,),
        )
        try:
            _wait_for_the_applied_event(port, "the worker's metrics on the inherited socket")
        finally:
            proc.terminate()
            assert proc.wait(timeout=15) == 0
            runtime.stop()
        # the port is still this process's: a worker started next serves on it again
        assert len(listening_sockets(port)) == 1
