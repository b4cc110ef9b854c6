"""Run the API beside other work: in a thread of this process (:class:`EmbeddedServer`: tests,
notebooks) or as a `tailorbot serve` child process (:class:`ServerProcess`: the demo, whose
simulated customers then get a core of their own).

>>> import tempfile
>>> from tailorbot.config import Settings
>>> with EmbeddedServer(Settings.load(data_dir=tempfile.mkdtemp())) as server:
...     import httpx
...     httpx.get(server.url + "/healthz").status_code
200
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time

import httpx
import uvicorn

from tailorbot._ports import held_port
from tailorbot.api.app import create_app
from tailorbot.config import Settings


def free_port(host: str = "127.0.0.1") -> int:
    """A port free now, released at once: another socket may take it before it is used (see
    :func:`tailorbot._ports.held_port` for a port that is kept)."""
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


class EmbeddedServer:
    """A uvicorn server for ``settings`` on ``host:port`` (a free port when 0).

    The listening socket is bound here, before the server thread starts, so the port cannot
    be taken by someone else between choosing it and serving on it.
    """

    def __init__(self, settings: Settings, host: str = "127.0.0.1", port: int = 0) -> None:
        self.settings = settings
        self.host = host
        self._socket = held_port(host, port)  # uvicorn listens on it
        self.port = int(self._socket.getsockname()[1])
        self.url = f"http://{self.host}:{self.port}"
        self.app = create_app(settings)
        config = uvicorn.Config(self.app, log_level="warning", access_log=False)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run,
            kwargs={"sockets": [self._socket]},
            name="tailorbot-api",
            daemon=True,
        )

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
        if self._thread.is_alive():
            self._thread.join(timeout=30)
        self._socket.close()

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


class ServerProcess:
    """``python -m tailorbot serve`` with ``settings`` (passed as ``TAILORBOT_*`` variables)."""

    def __init__(self, settings: Settings, host: str = "127.0.0.1", port: int = 0) -> None:
        self.settings = settings
        self.host = host
        self._holder: socket.socket | None = None
        if not port:  # a port of our choosing, kept until the server listens (held_port)
            self._holder = held_port(host)
            port = int(self._holder.getsockname()[1])
        self.port = port
        self.url = f"http://{self.host}:{self.port}"
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout_s: float = 120.0) -> ServerProcess:
        env = {**os.environ, **self.settings.to_env()}
        args = [
            sys.executable,
            "-m",
            "tailorbot",
            "serve",
            "--host",
            self.host,
            "--port",
            str(self.port),
            "--log-level",
            "warning",
        ]
        try:
            self._proc = proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL)
            self._wait_healthy(proc, timeout_s)
        finally:
            self._release_port()
        return self

    def _release_port(self) -> None:
        holder, self._holder = self._holder, None
        if holder is not None:
            holder.close()

    def _wait_healthy(self, proc: subprocess.Popen[bytes], timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        # One client for the polls: httpx.get builds a client (and its TLS context) per call,
        # ~25 ms of CPU, half a core at this pace taken from the server that is starting.
        with httpx.Client(timeout=1) as client:
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"the API server exited with status {proc.returncode}")
                try:
                    if client.get(self.url + "/healthz").status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(
                        f"the API server on {self.url} did not start in {timeout_s}s"
                    )
                time.sleep(0.05)

    def stop(self) -> None:
        self._release_port()
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGINT)  # uvicorn's graceful shutdown
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def wait(self) -> None:
        """Block until the server stops (Ctrl-C stops it)."""
        try:
            while self._proc is not None and self._proc.poll() is None:
                time.sleep(0.5)
        except KeyboardInterrupt:
            self.stop()

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
