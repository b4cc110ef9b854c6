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

from tailorbot.api.server import free_port
from tailorbot.config import Settings
from tailorbot.runtime import Runtime
from tests.helpers import http, listening_sockets, wait_until


def _listening_address(port: int) -> str | None:
    """The local IPv4 address a socket listens on at ``port``."""
    for address, _, _ in listening_sockets(port):
        if len(address) == 8:  # IPv4, little-endian hex
            return ".".join(str(int(address[i : i + 2], 16)) for i in (6, 4, 2, 0))
    return None


def test_standalone_worker_exposes_what_it_applied(tmp_path: Path) -> None:
    settings = Settings.load(data_dir=tmp_path, run_worker_in_server=False)
    runtime = Runtime(settings)
    now = datetime.now(UTC).isoformat()
    runtime.ingestion.ingest(
        [{"type": "session_started", "user_id": "u1", "session_id": "s1", "timestamp": now}]
    )
    port = free_port()
    cli = Path(sys.executable).parent / "tailorbot"
    # the API's host is public here; the worker's metrics must stay on loopback by default
    env = {**os.environ, "TAILORBOT_HOST": "0.0.0.0"}
    proc = subprocess.Popen(
        [str(cli), "worker", "--data-dir", str(tmp_path), "--metrics-port", str(port)],
        stdout=subprocess.DEVNULL,
        env=env,
    )
    try:

        def applied() -> bool:
            try:
                text = http().get(f"http://127.0.0.1:{port}/metrics", timeout=1).text
            except httpx.HTTPError:
                return False
            return "tailorbot_events_applied_total 1.0" in text

        wait_until(applied, "the worker's metrics to show the applied event", limit_s=30)
        assert _listening_address(port) == "127.0.0.1"
    finally:
        proc.terminate()
        proc.wait(timeout=15)
        runtime.stop()


def test_worker_serves_its_metrics_on_an_inherited_socket(tmp_path: Path) -> None:
    settings = Settings.load(data_dir=tmp_path, run_worker_in_server=False)
    runtime = Runtime(settings)
    now = datetime.now(UTC).isoformat()
    runtime.ingestion.ingest(
        [{"type": "session_started", "user_id": "u1", "session_id": "s1", "timestamp": now}]
    )
    cli = Path(sys.executable).parent / "tailorbot"
    with socket.create_server(("127.0.0.1", 0)) as held:  # as the supervisor holds it
        port, fd = held.getsockname()[1], held.fileno()
        proc = subprocess.Popen(
            [str(cli), "worker", "--data-dir", str(tmp_path), "--metrics-fd", str(fd)],
            stdout=subprocess.DEVNULL,
            pass_fds=(fd,),
        )
        try:

            def applied() -> bool:
                try:
                    text = http().get(f"http://127.0.0.1:{port}/metrics", timeout=1).text
                except httpx.HTTPError:
                    return False
                return "tailorbot_events_applied_total 1.0" in text

            wait_until(applied, "the worker's metrics on the inherited socket", limit_s=30)
        finally:
            proc.terminate()
            assert proc.wait(timeout=15) == 0
            runtime.stop()
        # the port is still this process's: a worker started next serves on it again
        assert len(listening_sockets(port)) == 1
