"""The server processes of one ``tailorbot serve --workers N`` reading each other's metrics.

``serve`` makes a private directory (mode 0700) and gives its path to every server process
(``settings.metrics_siblings_dir``). Each process serves its own text exposition on a Unix
socket there, ``<pid>.sock``, from a thread of its own (never the event loop). The process a
``/metrics`` scrape reaches reads every other socket (:func:`sibling_expositions`) and answers
with the sum (:mod:`.process_sum`).

A process that stops cleanly leaves its last exposition in ``<pid>.ended.prom``: its counters
keep counting in the sum, so a process restarted by the supervisor does not make the
server's counters go back (Prometheus would read that as a reset). A process killed
outright leaves only a dead socket, which the next scrape removes: its counts since start
are lost to the sum, the one way the figures can drop.

>>> import tempfile
>>> from tailorbot.metrics import Metrics
>>> with tempfile.TemporaryDirectory() as folder:
...     own = SiblingExposition(Path(folder), Metrics().render, pid=1)
...     other = Metrics()
...     other.decisions.labels(outcome="answered").inc(2)
...     sibling = SiblingExposition(Path(folder), other.render, pid=2)
...     found = sibling_expositions(Path(folder), own_pid=1, timeout_s=5.0)
...     sibling.close()
...     after = sibling_expositions(Path(folder), own_pid=1, timeout_s=5.0)
...     own.close()
>>> found.answered, 'tailorbot_decisions_total{outcome="answered"} 2.0' in found.texts[0].text
(1, True)
>>> after.answered, after.ended, after.texts[0].ended
(0, 1, True)
"""

from __future__ import annotations

import contextlib
import http.server
import logging
import os
import socketserver
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.metrics_core import GaugeMetricFamily

from tailorbot.telemetry.process_sum import Exposition

logger = logging.getLogger(__name__)
SOCKET_SUFFIX = ".sock"
ENDED_SUFFIX = ".ended.prom"


class _Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


class SiblingExposition:
    """This process's exposition (``render``: its text) on ``<folder>/<pid>.sock``, until
    :meth:`close`, which leaves the last one in ``<pid>.ended.prom``."""

    def __init__(self, folder: Path, render: Callable[[], bytes], pid: int | None = None) -> None:
        self.folder = folder
        self.render = render
        self.pid = os.getpid() if pid is None else pid
        self._path = folder / f"{self.pid}{SOCKET_SUFFIX}"
        with contextlib.suppress(FileNotFoundError):  # a reused pid's dead socket
            self._path.unlink()
        self._server = _Server(str(self._path), _handler(render))
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="tailorbot-sibling-metrics", daemon=True
        )
        self._thread.start()

    def close(self) -> None:
        """Stop serving; write the last exposition (atomically: a reader never sees half)."""
        self._server.shutdown()
        self._server.server_close()
        with contextlib.suppress(FileNotFoundError):
            self._path.unlink()
        final = self.folder / f"{self.pid}{ENDED_SUFFIX}"
        partial = final.with_suffix(".partial")
        try:
            partial.write_bytes(self.render())
            partial.replace(final)
        except OSError as exc:  # the folder is gone: serve is stopping as a whole
            logger.warning("cannot leave this process's last metrics in %s: %r", final, exc)


def _handler(render: Callable[[], bytes]) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the name http.server calls
            body = render()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def address_string(self) -> str:  # a Unix socket's peer has no address
            return "sibling"

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - http.server's
            pass  # a scrape of a sibling is not an access worth a log line

    return Handler


@dataclass
class Siblings:
    """What the other server processes gave: their expositions (the ended ones' too) and
    how many answered, could not (alive but unreachable), or have ended."""

    texts: list[Exposition] = field(default_factory=list)
    answered: int = 0
    unreachable: int = 0
    ended: int = 0

    def family(self) -> GaugeMetricFamily:
        """``tailorbot_server_processes{state}``: what the sum is made of (this process is
        one of the answered), so a partial sum shows."""
        family = GaugeMetricFamily(
            "tailorbot_server_processes",
            "Server processes of this server whose metrics /metrics sums, by state: answered, "
            "unreachable (alive, left out), ended (their counters still count)",
            labels=["state"],
        )
        family.add_metric(["answered"], self.answered + 1)
        family.add_metric(["unreachable"], self.unreachable)
        family.add_metric(["ended"], self.ended)
        return family


def sibling_expositions(folder: Path, own_pid: int, timeout_s: float) -> Siblings:
    """Every other process's exposition in ``folder`` (a dead one's socket is removed)."""
    found = Siblings()
    try:
        entries = sorted(folder.iterdir())
    except OSError as exc:
        logger.warning("cannot list the server processes' metrics in %s: %r", folder, exc)
        return found
    for path in entries:
        if path.name.endswith(ENDED_SUFFIX):
            with contextlib.suppress(OSError):  # a half-gone folder: skip it
                found.texts.append(Exposition(path.read_text(), ended=True))
                found.ended += 1
            continue
        if not path.name.endswith(SOCKET_SUFFIX):
            continue
        pid = int(path.name.removesuffix(SOCKET_SUFFIX))
        if pid == own_pid:
            continue
        try:
            transport = httpx.HTTPTransport(uds=str(path))
            with httpx.Client(transport=transport, timeout=timeout_s) as client:
                response = client.get("http://sibling/metrics")
                response.raise_for_status()
            found.texts.append(Exposition(response.text))
            found.answered += 1
        except httpx.HTTPError as exc:
            if _alive(pid):
                logger.warning("server process %d's metrics are unreachable: %r", pid, exc)
                found.unreachable += 1
            else:  # killed without a clean stop: its socket stays behind
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
    return found


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


__all__ = ["SiblingExposition", "Siblings", "sibling_expositions"]
