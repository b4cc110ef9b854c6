"""Keep a decision service on the newest version of the live knowledge base.

The KB of a deployment is a :class:`~tailorbot.kb.repository.KBRepository`: versioned
snapshots under the data directory, changed through ``/v1/kb/...``. :class:`KBReloader`
reads the version in force every ``interval_s`` seconds (one small file) and, when it moved,
loads that KB and hands it to :meth:`DecisionService.use_kb`, so every server process serves
the new articles and templates without a restart. The API calls :meth:`KBReloader.check`
right after a change, so the process that made it serves it at once (with ``kb_poll_s`` 0
there is no polling: the process serves its own changes, and the other processes' at their
next start).
"""

from __future__ import annotations

import logging
import threading

from tailorbot.kb.repository import KBRepository
from tailorbot.services.decisions.refresh import PeriodicRefresh
from tailorbot.services.decisions.service import DecisionService

logger = logging.getLogger(__name__)


def kb_version_label(version: int) -> str:
    """The KB's version in decision records: ``live-v<N>``."""
    return f"live-v{version}"


def kb_version_number(label: str) -> int:
    """The inverse of :func:`kb_version_label`.

    >>> kb_version_number(kb_version_label(7))
    7
    """
    return int(label.removeprefix("live-v"))


class KBReloader:
    """Swap ``service`` onto each new version of ``repository`` (loaded: ``version``)."""

    def __init__(
        self,
        repository: KBRepository,
        service: DecisionService,
        version: int,
        interval_s: float,
    ) -> None:
        self.repository = repository
        self.service = service
        self.version = version
        self.interval_s = interval_s
        self._lock = threading.Lock()
        self._refresh = PeriodicRefresh([self._tick], interval_s)

    def check(self) -> bool:
        """Load the version in force if it is not the one served; True when it swapped."""
        with self._lock:
            if self.repository.version() == self.version:
                return False
            version, kb = self.repository.load()
            self.service.use_kb(kb, kb_version_label(version))
            logger.info("knowledge base: now serving version %d (%r)", version, kb)
            self.version = version
            return True

    def _tick(self) -> None:
        self.check()

    def start(self) -> None:
        self._refresh.start()

    def stop(self) -> None:
        self._refresh.stop()
