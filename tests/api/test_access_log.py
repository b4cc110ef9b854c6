"""A real uvicorn server with its access log on: user ids never reach it."""

from __future__ import annotations

import logging
import socket
import threading
import time
from pathlib import Path

import httpx
import pytest
import uvicorn

from tailorbot.api.app import create_app
from tailorbot.config import Settings


def test_the_access_log_has_no_user_id(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    app = create_app(Settings.load(data_dir=tmp_path, run_worker_in_server=False))
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, access_log=True, log_config=None))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    with caplog.at_level(logging.INFO, logger="uvicorn.access"):
        thread.start()
        while not server.started:
            time.sleep(0.02)
        url = f"http://127.0.0.1:{port}"
        httpx.put(url + "/v1/users/zoe-77/", json={}, timeout=10)
        httpx.put(url + "/v1/users/zoe-77", json={"tier": "gold"}, timeout=10)
        httpx.get(url + "/v1/users/zoe-77/features?x=1", timeout=10)
        httpx.delete(url + "/v1/users/zoe-77", timeout=10)
        server.should_exit = True
        thread.join(30)
    lines = [r.getMessage() for r in caplog.records if r.name == "uvicorn.access"]
    assert len(lines) == 4, lines
    assert not any("zoe-77" in line for line in lines), lines
    assert any("/v1/users/{user_id}/features?x=1" in line for line in lines), lines
