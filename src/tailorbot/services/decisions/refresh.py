"""Re-read shared state off the request path: a daemon thread calling refreshers periodically.

Reading the shared bandit statistics and article statistics costs a few milliseconds; doing it
inside a request would put that on some requests' latency. A refresher runs once at start (so
the first decision already sees the shared state) and then every ``interval_s`` seconds; a
failing refresh is logged and retried at the next tick, the last good state stays in use.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence

logger = logging.getLogger(__name__)


class PeriodicRefresh:
    def __init__(self, refreshers: Sequence[Callable[[], None]], interval_s: float) -> None:
        self.refreshers = tuple(refreshers)
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self.run_once()
        if self.interval_s <= 0 or self._thread is not None:
            return
        self._thread = threading.Thread(target=self._loop, name="tailorbot-refresh", daemon=True)
        self._thread.start()

    def run_once(self) -> None:
        for refresh in self.refreshers:
            try:
                refresh()
            except Exception:  # noqa: BLE001 - keep serving with the last good state
                logger.exception("refreshing shared decision state failed; retrying later")

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.run_once()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
