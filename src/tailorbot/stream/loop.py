"""What every consumer-group worker shares: the batch loop, the one error handler, and
joining and leaving the group.

A subclass implements :meth:`ConsumerLoop.run_once` (poll one batch, apply it, and only then
commit) and may hook :meth:`_discard` (drop what a failed batch collected), :meth:`_on_join`
(before joining: partitions may have moved meanwhile) and :meth:`_linger_after`.
"""

from __future__ import annotations

import logging
import threading
from abc import ABC, abstractmethod

from tailorbot.config import Settings
from tailorbot.log.base import Consumer, EventLog

logger = logging.getLogger(__name__)

MAX_BACKOFF_S = 5.0  # the longest pause after failing batches


class ConsumerLoop(ABC):
    """One member of consumer group ``group`` of ``log``, running batches until stopped."""

    name = "worker"  # in log messages

    def __init__(
        self, log: EventLog, settings: Settings, group: str, member_id: str | None
    ) -> None:
        self.log = log
        self.settings = settings
        self.group = group
        self.member_id = member_id
        self._consumer: Consumer | None = None
        self._closed = False
        self.errors = 0  # batches that failed (see run)

    @abstractmethod
    def run_once(self) -> int:
        """Poll, apply, commit one batch; return how many log records it handled."""

    def run(self, stop_event: threading.Event) -> None:
        """Run batches until ``stop_event`` is set; sleep ``worker_poll_s`` when idle.

        A failing batch (a backend unreachable...) goes to :meth:`_on_error`: logged, counted,
        and retried after a growing pause, from the last committed offsets.
        """
        backoff = 0.0
        while not stop_event.is_set() and not self._closed:
            try:
                handled = self.run_once()
            except Exception as exc:  # noqa: BLE001 - one handler for every batch failure
                backoff = self._on_error(exc, backoff)
                stop_event.wait(backoff)
                continue
            backoff = 0.0
            if handled == 0:
                stop_event.wait(self.settings.worker_poll_s)
            else:
                self._linger_after(handled, stop_event)

    def _linger_after(self, handled: int, stop_event: threading.Event) -> None:  # noqa: B027
        """Called after a batch of ``handled`` records; a subclass may wait a little."""

    def _on_error(self, exc: Exception, backoff: float) -> float:
        """Log and count ``exc``; leave the group so the batch is read again; next pause."""
        self.errors += 1
        self._discard()
        pause = min(MAX_BACKOFF_S, max(self.settings.worker_poll_s, backoff * 2 or 0.05))
        logger.error(
            "%s batch failed (error %s); re-reading it in %.2f s: %r",
            self.name,
            self.errors,
            pause,
            exc,
        )
        self._leave()
        return pause

    def _discard(self) -> None:  # noqa: B027 - optional hook
        """Drop what a failed batch collected (it will be read again)."""

    def _on_join(self) -> None:  # noqa: B027 - optional hook
        """Called before (re)joining the group."""

    def close(self) -> None:
        """Leave the consumer group (the backends stay open: the caller owns them)."""
        self._closed = True
        self._leave()

    def _join(self) -> Consumer:
        if self._closed:
            raise RuntimeError(f"the {self.name} is closed")
        if self._consumer is None:
            self._on_join()
            self._consumer = self.log.consumer(self.group, self.member_id)
        return self._consumer

    def _leave(self) -> None:
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            try:
                consumer.close()
            except Exception as exc:  # noqa: BLE001 - a dead connection cannot stop a retry
                logger.warning("could not leave the consumer group cleanly: %r", exc)
