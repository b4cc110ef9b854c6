"""The server processes of one ``tailorbot serve --workers N`` reading each other's metrics.

``serve`` makes a private directory (mode 0700) and gives its path to every server process
(``settings.metrics_siblings_dir``). Each process serves its own text exposition on a Unix
socket there, ``<pid>-<start ns>.sock`` (a name no later process reuses), from a thread of
its own, never the event loop. The process a ``/metrics`` scrape reaches reads every other
socket at once (:meth:`SiblingExposition.read`) and answers with the sum
(:mod:`.process_sum`).

A process that stops cleanly first folds its last exposition into ``ended.json`` (the sum
of every ended process, with their names; under a file lock), then closes its socket: its
counters keep counting, so the server's counters do not go back (Prometheus would read that
as a reset). A reader fetches the live sockets *before* it reads ``ended.json``, and drops a
live answer whose process is folded in by then: a process stopping meanwhile counts once,
never twice and never not at all. A socket takes its name only once it listens, so one that
refuses a connection belongs to a process that is gone (killed outright: its counts since
start are lost to the sum), and the reader removes it; one that accepts and does not answer
in time is a live process's, and the read names it ``silent``. So is a live process that
could not make its socket (:meth:`SiblingExposition.mark_unjoined`).

>>> import tempfile
>>> from tailorbot.metrics import Metrics
>>> with tempfile.TemporaryDirectory() as folder:
...     own = SiblingExposition(Path(folder), Metrics().render)
...     other = Metrics()
...     other.decisions.labels(outcome="answered").inc(2)
...     sibling = SiblingExposition(Path(folder), other.render)
...     live = own.read(timeout_s=5.0)
...     sibling.close()
...     after = own.read(timeout_s=5.0)
...     own.close()
>>> live.answered, 'tailorbot_decisions_total{outcome="answered"} 2.0' in live.expositions[0].text
(1, True)
>>> after.answered, after.ended, after.expositions[0].ended
(0, 1, True)
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import fcntl
import http.client
import http.server
import json
import logging
import os
import socket
import socketserver
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prometheus_client import generate_latest
from prometheus_client.metrics_core import GaugeMetricFamily

from tailorbot.metrics import registry_of
from tailorbot.telemetry.process_sum import Exposition, summed_families

logger = logging.getLogger(__name__)
SOCKET_SUFFIX = ".sock"
ENDED = "ended.json"
LOCK = "ended.lock"
UNJOINED_SUFFIX = ".unjoined"
BINDING_SUFFIX = ".binding"
# A socket's path must fit sockaddr_un, the last byte a NUL (108 bytes on Linux, 104 on
# macOS): the folder's path plus the longest name this module makes.
MAX_SOCKET_PATH = 103 if sys.platform == "darwin" else 107
LONGEST_NAME = len(f"{2**22}-{2**63}{SOCKET_SUFFIX}{BINDING_SUFFIX}") + 1


def folder_fits(folder: Path) -> bool:
    """Whether the sockets' paths in ``folder`` fit a Unix socket address."""
    return len(os.fsencode(folder)) + LONGEST_NAME <= MAX_SOCKET_PATH


class _Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        # a reader that gave up (its timeout) closed the connection: not worth a traceback
        logger.debug("a sibling's read of these metrics failed", exc_info=True)


@dataclass
class Siblings:
    """What the other server processes gave: their expositions (``ended.json``'s too) and
    how many answered, could not (alive but silent: named in ``silent``), or have ended."""

    expositions: list[Exposition] = field(default_factory=list)
    answered: int = 0
    silent: list[str] = field(default_factory=list)
    ended: int = 0

    def family(self) -> GaugeMetricFamily:
        """``tailorbot_server_processes{state}``: what the sum is made of (this process is
        one of the answered)."""
        family = GaugeMetricFamily(
            "tailorbot_server_processes",
            "Server processes whose metrics /metrics sums, by state: answered (this one "
            "included), ended (their counters still count)",
            labels=["state"],
        )
        family.add_metric(["answered"], self.answered + 1)
        family.add_metric(["ended"], self.ended)
        return family


class SiblingExposition:
    """This process's exposition (``render``: its text) on a socket in ``folder``, and its
    reads of the other processes' (:meth:`read`), until :meth:`close`."""

    def __init__(self, folder: Path, render: Callable[[], bytes]) -> None:
        self.folder = folder
        self.render = render
        self.name = f"{os.getpid()}-{time.time_ns()}"
        self._path = folder / f"{self.name}{SOCKET_SUFFIX}"
        self._closed = False
        # Bound and listening under another name first: a socket under its final name that
        # refuses a connection is one whose process is gone, whatever its pid now names.
        binding = self._path.with_name(self._path.name + BINDING_SUFFIX)
        self._server = _Server(str(binding), _handler(render))
        try:
            binding.replace(self._path)
        except OSError:
            self._server.server_close()
            raise
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="tailorbot-sibling-metrics", daemon=True
        )
        self._thread.start()

    @staticmethod
    def mark_unjoined(folder: Path) -> None:
        """Say, for the other processes' reads, that this process could not serve its
        metrics (they answer 503 while it lives: their sum would leave it out)."""
        with contextlib.suppress(OSError):  # no folder: every read fails anyway
            (folder / f"{os.getpid()}-{time.time_ns()}{UNJOINED_SUFFIX}").touch()

    def read(self, timeout_s: float) -> Siblings:
        """Every other process's exposition, the live ones read at once (each within
        ``timeout_s``), then the ended ones'. An ``OSError`` when the folder cannot be read."""
        entries = sorted(self.folder.iterdir())
        sockets = {
            path.name.removesuffix(SOCKET_SUFFIX): path
            for path in entries
            if path.name.endswith(SOCKET_SUFFIX) and path != self._path
        }
        with concurrent.futures.ThreadPoolExecutor(max(1, len(sockets))) as pool:
            answers = dict(zip(sockets, pool.map(_fetch(timeout_s), sockets.values()), strict=True))
        folded, ended_text = _read_ended(self.folder)
        found = Siblings()
        if ended_text:
            found.expositions.append(Exposition(ended_text, ended=True))
            found.ended = len(folded)
        for name, answer in answers.items():
            if isinstance(answer, (ConnectionRefusedError, FileNotFoundError)):
                # Nobody listens: the process is gone (killed, or closing after its fold).
                with contextlib.suppress(FileNotFoundError):
                    sockets[name].unlink()
            elif name in folded:  # it stopped meanwhile: its last exposition is in ended
                continue
            elif isinstance(answer, str):
                found.expositions.append(Exposition(answer))
                found.answered += 1
            else:
                logger.warning("server process %s's metrics are unreachable: %r", name, answer)
                found.silent.append(name)
        for path in entries:
            if path.name.endswith(UNJOINED_SUFFIX):
                name = path.name.removesuffix(UNJOINED_SUFFIX)
                if _alive(name):
                    found.silent.append(name)
                else:
                    with contextlib.suppress(FileNotFoundError):
                        path.unlink()
        return found

    def close(self) -> None:
        """Fold the last exposition into ``ended.json``, then stop serving (once)."""
        if self._closed:
            return
        self._closed = True
        try:
            with _exclusive(self.folder):
                folded, ended_text = _read_ended(self.folder)
                last = [Exposition(self.render().decode(), ended=True)]
                if ended_text:
                    last.append(Exposition(ended_text, ended=True))
                record = {
                    "processes": [*folded, self.name],
                    "exposition": generate_latest(registry_of(summed_families(last))).decode(),
                }
                partial = self.folder / f"{ENDED}.partial"
                partial.write_text(json.dumps(record))
                partial.replace(self.folder / ENDED)  # a reader sees the old or the new
        except OSError as exc:  # the folder is gone: serve is stopping as a whole
            logger.warning("cannot leave this process's last metrics in %s: %r", self.folder, exc)
        finally:
            self._server.shutdown()
            self._server.server_close()
            with contextlib.suppress(FileNotFoundError):
                self._path.unlink()


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


class _UnixConnection(http.client.HTTPConnection):
    """HTTP over a Unix socket: no TLS context, no pool (what an HTTP client would build)."""

    def __init__(self, path: Path, timeout: float) -> None:
        super().__init__("sibling", timeout=timeout)
        self.path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(str(self.path))


def _fetch(timeout_s: float) -> Callable[[Path], str | Exception]:
    def fetch(path: Path) -> str | Exception:
        connection = _UnixConnection(path, timeout_s)
        try:
            connection.request("GET", "/metrics")
            response = connection.getresponse()
            body = response.read()
            if response.status != 200:
                return http.client.HTTPException(f"status {response.status}")
            return body.decode()
        except (OSError, http.client.HTTPException) as exc:
            return exc
        finally:
            connection.close()

    return fetch


@contextlib.contextmanager
def _exclusive(folder: Path) -> Iterator[None]:
    """The folder's lock, held by one folding process at a time (readers need none: the
    record is replaced whole)."""
    with open(folder / LOCK, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield  # the lock goes with the descriptor


def _read_ended(folder: Path) -> tuple[set[str], str]:
    """The processes folded into ``ended.json`` and their summed exposition."""
    try:
        record = json.loads((folder / ENDED).read_text())
    except FileNotFoundError:
        return set(), ""
    return set(record["processes"]), record["exposition"]


def _alive(name: str) -> bool:
    """Whether the process named ``<pid>-<ns>`` runs (a malformed name: no)."""
    pid = name.partition("-")[0]
    if not (pid.isascii() and pid.isdecimal()) or not 0 < int(pid) < 2**22:
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


__all__ = ["SiblingExposition", "Siblings", "folder_fits"]
