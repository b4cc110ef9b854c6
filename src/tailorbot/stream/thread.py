"""Run a worker's loop (a stream worker, an archive worker) in a background thread.

>>> import threading
>>> class Idle:
...     def run(self, stop_event: threading.Event) -> None:
...         stop_event.wait()
...     def close(self) -> None:
...         pass
>>> thread = WorkerThread(Idle(), name="idle")
>>> thread.start()
>>> thread.state()
'running'
>>> thread.stop()
>>> thread.state()
'stopped'
"""

from __future__ import annotations

import logging
import threading
from typing import Protocol

logger = logging.getLogger(__name__)


class LoopWorker(Protocol):
    """What :class:`WorkerThread` runs: a loop until ``stop_event`` is set, then ``close``."""

    def run(self, stop_event: threading.Event) -> None: ...

    def close(self) -> None: ...


class WorkerThread:
    """``worker.run(stop_event)`` in a daemon thread; the error that ended it is kept in
    ``error`` (the worker's own loop retries batch failures, so an error here is a bug or a
    stop it could not survive)."""

    def __init__(self, worker: LoopWorker, name: str) -> None:
        self.worker = worker
        self.name = name
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError(f"{self.name} was started already")
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self.worker.run(self._stop)
        except BaseException as exc:  # reported by state(); the process keeps serving
            self.error = exc
            logger.exception("%s stopped on an error", self.name)

    def state(self) -> str:
        """``running``, ``failed: <error>`` or ``stopped``."""
        if self.error is not None:
            return f"failed: {self.error}"
        if self._thread is not None and self._thread.is_alive():
            return "running"
        return "stopped"

    def stop(self) -> None:
        """Ask the loop to stop, wait for it, close the worker. Idempotent."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.worker.close()
