"""Run the API in a background thread of this process (the demo, tests, notebooks).

>>> import tempfile
>>> from tailorbot.config import Settings
>>> with EmbeddedServer(Settings.load(data_dir=tempfile.mkdtemp())) as server:
...     import httpx
...     httpx.get(server.url + "/healthz").status_code
200
"""

from __future__ import annotations

import socket
import threading
import time

import uvicorn

from tailorbot.api.app import create_app
from tailorbot.config import Settings


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


class EmbeddedServer:
    """A uvicorn server for ``settings`` on ``host:port`` (a free port when 0)."""

    def __init__(self, settings: Settings, host: str = "127.0.0.1", port: int = 0) -> None:
        self.settings = settings
        self.host = host
        self.port = port or free_port(host)
        self.url = f"http://{self.host}:{self.port}"
        config = uvicorn.Config(
            create_app(settings),
            host=self.host,
            port=self.port,
            log_level="warning",
            access_log=False,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="tailorbot-api", daemon=True)

    def start(self, timeout_s: float = 60.0) -> EmbeddedServer:
        self._thread.start()
        deadline = time.monotonic() + timeout_s
        while not self._server.started:
            if not self._thread.is_alive():
                raise RuntimeError(f"the API server on {self.url} failed to start")
            if time.monotonic() > deadline:
                raise RuntimeError(f"the API server on {self.url} did not start in {timeout_s}s")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=30)

    def wait(self) -> None:
        """Block until the server stops (Ctrl-C)."""
        try:
            while self._thread.is_alive():
                self._thread.join(timeout=0.5)
        except KeyboardInterrupt:
            self.stop()

    def __enter__(self) -> EmbeddedServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
