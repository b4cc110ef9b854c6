"""The stream worker as a child process of ``tailorbot serve``, restarted if it dies.

By default ``tailorbot serve`` runs the HTTP API in its process(es) and the stream worker in
a process of its own: the worker applies events on its own core instead of sharing the API's
interpreter lock, and a crash of one does not take the other down. The child is a plain
``tailorbot worker`` with the same settings (passed as ``TAILORBOT_*`` variables), serving
its metrics, which the API's ``/metrics`` includes, on a socket the supervisor listens on
(127.0.0.1, a port of the kernel's choosing) and hands to each child (``--metrics-fd``).
The supervisor holds the port for its whole life: a port picked free and bound later by
each child could be taken by another process in between, and every restart would then fail
the same way. Between a child's death and the next start it accepts and closes every
connection, so ``/readyz``, ``/metrics`` and the dashboard find the worker down at once,
as on a closed port, instead of waiting out their timeouts in the socket's queue.

Every child of one supervisor joins the consumer groups under one name (``--member-id``).
A child is restarted only once the one before it has exited, so the name is never live
twice, and the new child takes the partitions of the dead one back at once: the embedded and
Redis logs hold them for the name until its session lapses (10 s by default), which under
a new name it would have waited out. (On Kafka the name is the client id only: the group
rebalances as for any new member.)
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import logging
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from tailorbot.config import Settings
from tailorbot.log.base import new_member_id

logger = logging.getLogger(__name__)

PR_SET_PDEATHSIG = 1  # prctl option: the signal this process gets when its parent dies
MAX_RESTART_PAUSE_S = 30.0  # the longest pause before restarting a worker that keeps dying
HEALTHY_RUN_S = 60.0  # a worker that ran this long before dying restarts after 1 s again
REFUSE_POLL_S = 0.1  # between two workers, how often the metrics socket is looked at


class WorkerProcess:
    """Runs ``tailorbot worker --metrics-fd FD`` for ``settings`` until :meth:`stop`; the
    socket behind ``FD`` listens on 127.0.0.1 from construction until :meth:`stop`."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._metrics = socket.create_server(("127.0.0.1", 0))
        self.metrics_port: int = self._metrics.getsockname()[1]
        self.member_id = new_member_id()  # every child's name in the groups
        self.restarts = 0
        self._proc: subprocess.Popen[bytes] | None = None
        self._spawned_at = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.metrics_port}"

    def start(self) -> None:
        self._spawn()
        self._thread = threading.Thread(target=self._watch, name="worker-supervisor", daemon=True)
        self._thread.start()

    def _spawn(self) -> None:
        env = {**os.environ, **self.settings.to_env()}
        command = [sys.executable, "-m", "tailorbot", "worker"]
        fd = self._metrics.fileno()
        command += ["--metrics-fd", str(fd), "--member-id", self.member_id]
        self._proc = subprocess.Popen(
            command,
            env=env,
            pass_fds=(fd,),
            preexec_fn=_end_with_parent(),  # only prctl, looked up beforehand
        )
        self._spawned_at = time.monotonic()

    def _watch(self) -> None:
        pause = 1.0
        while not self._stop.wait(0.5):
            proc = self._proc
            if proc is None or proc.poll() is None:
                continue
            if time.monotonic() - self._spawned_at > HEALTHY_RUN_S:
                pause = 1.0  # it ran a while before dying: the back-off starts afresh
            logger.error("the stream worker exited with %s; restarting in %.0f s",
                         proc.returncode, pause)  # fmt: skip
            if self._refuse_for(pause):
                return
            self._spawn()
            self.restarts += 1
            pause = min(MAX_RESTART_PAUSE_S, pause * 2)

    def _refuse_for(self, seconds: float) -> bool:
        """Accept and close every connection to the metrics socket for ``seconds`` (no
        worker runs: a reader fails at once); True if :meth:`stop` was called meanwhile."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0 and not self._stop.is_set():
            ready, _, _ = select.select([self._metrics], [], [], min(left, REFUSE_POLL_S))
            if ready:
                with contextlib.suppress(OSError):  # the client may be gone already
                    connection, _ = self._metrics.accept()
                    connection.close()
        return self._stop.is_set()

    def stop(self, timeout_s: float = 20.0) -> None:
        """SIGTERM the worker (it finishes its batch and commits), SIGKILL past ``timeout_s``."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        try:
            self._end_child(timeout_s)
        finally:
            self._metrics.close()

    def _end_child(self, timeout_s: float) -> None:
        proc = self._proc
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@functools.cache
def _prctl() -> Any:
    """libc's ``prctl``, or None off Linux. Looked up in the parent: between fork and exec
    the child has only the forking thread, and a dlopen/dlsym there could wait for a loader
    lock that another thread held at the fork."""
    return ctypes.CDLL(None, use_errno=True).prctl if sys.platform.startswith("linux") else None


def _end_with_parent() -> Callable[[], Any] | None:
    """What the child runs before exec: SIGTERM it when ``serve`` dies, even by SIGKILL
    (Linux's PR_SET_PDEATHSIG), so a killed server leaves no orphaned worker behind."""
    prctl = _prctl()
    return None if prctl is None else functools.partial(prctl, PR_SET_PDEATHSIG, signal.SIGTERM)
