"""Health: can this process serve? Backends reachable, the stream lag, its worker threads.

The log and the store gate readiness; the archive is reported but does not (serving works
without it, and its worker catches up later); a worker thread that died on an error makes the
process unready.

>>> import tempfile
>>> from tailorbot.log import open_log
>>> from tailorbot.store import open_stores
>>> data = tempfile.mkdtemp()
>>> log, stores = open_log(f"sqlite:///{data}/log.db", 4), open_stores(f"sqlite:///{data}/s.db")
>>> health = HealthService(log, stores, consumer_group="features")
>>> report = health.readiness()
>>> report["ready"], report["checks"]["store"], report["checks"]["worker"]
(True, 'ok', 'not running in this process')
>>> log.close(); stores.close()
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, Protocol

import httpx

from tailorbot.archive.base import ArchiveError, EventArchive
from tailorbot.log.base import EventLog, LogError
from tailorbot.store.base import StoreError, Stores
from tailorbot.telemetry.worker_metrics import worker_exposition

WORKER_PROBE_S = 1.0  # how long readiness waits for the worker process's metrics endpoint


logger = logging.getLogger(__name__)


class Threaded(Protocol):
    """A background worker as health sees it (WorkerThread fits)."""

    error: BaseException | None

    def state(self) -> str: ...


class HealthService:
    """``threads`` maps a name (``worker``, ``archiver``) to the threads running here; it is
    read at each call, so threads started later show up. ``worker_url`` is the metrics
    endpoint of a worker *process* serving this server (reported, not gating: decisions
    are still answered while it restarts, only with staler features)."""

    def __init__(
        self,
        log: EventLog,
        stores: Stores,
        consumer_group: str,
        archive: EventArchive | None = None,
        archive_group: str | None = None,
        threads: Mapping[str, Threaded] | None = None,
        worker_url: str | None = None,
    ) -> None:
        self.log = log
        self.stores = stores
        self.consumer_group = consumer_group
        self.archive = archive
        self.archive_group = archive_group
        self.threads = threads if threads is not None else {}
        self.worker_url = worker_url

    def readiness(self, detail: bool = False) -> dict[str, Any]:
        """``{"ready": bool, "checks": {...}}``. ``/readyz`` says only "unreachable" (no path
        or host:port in a public answer) and logs why; with ``detail`` (an operator's command
        line) the reason is in the check instead."""
        checks: dict[str, Any] = {}
        ready = self._check_log(checks, detail)
        try:
            self.stores.ping()
            checks["store"] = "ok"
        except StoreError as exc:
            ready = False
            checks["store"] = _unreachable("store", exc, detail)
        if self.archive is not None:
            try:
                self.archive.ping()
                checks["archive"] = "ok"
            except ArchiveError as exc:
                checks["archive"] = _unreachable("archive", exc, detail)
        checks["worker"] = self.thread_state("worker")
        if self.archive is not None:
            checks["archiver"] = self.thread_state("archiver")
        if any(thread.error is not None for thread in self.threads.values()):
            ready = False
        return {"ready": ready, "checks": checks}

    def _check_log(self, checks: dict[str, Any], detail: bool) -> bool:
        try:
            self.log.ping()
            checks["log"] = "ok"
            checks["lag"] = sum(self.log.lag(self.consumer_group).values())
            if self.archive is not None and self.archive_group is not None:
                checks["archive_lag"] = sum(self.log.lag(self.archive_group).values())
        except LogError as exc:
            checks["log"] = _unreachable("log", exc, detail)
            return False
        return True

    def thread_state(self, name: str) -> str:
        """State of the ``worker`` (or ``archiver``) thread of this process, or of the worker
        process when there is one."""
        thread = self.threads.get(name)
        if thread is not None:
            return thread.state()
        if name == "worker" and self.worker_url is not None:
            return self._process_state(self.worker_url)
        return "not running in this process"

    @staticmethod
    def _process_state(url: str) -> str:
        try:
            worker_exposition(url, WORKER_PROBE_S)
        except httpx.HTTPError as exc:
            return f"worker process unreachable: {type(exc).__name__}"
        return "running (own process)"


def _unreachable(what: str, exc: Exception, detail: bool) -> str:
    """The state a check reports: with ``detail`` the reason too, else the public word alone
    and the reason in the log."""
    if detail:
        return f"unreachable: {exc}"
    logger.warning("readiness: %s unreachable: %s", what, exc)
    return "unreachable"
