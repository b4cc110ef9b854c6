"""Decision and feedback records to the archive, written from a background thread.

``/v1/personalize`` and ``/v1/feedback`` hand their records to an :class:`ArchiveWriter`
and return; a thread writes them in batches. The queue is bounded: when it is full the
caller writes its record itself (slower, never lost). A batch that fails (archive
unreachable) is retried after a growing pause; while closing, a failure is final and the
records it leaves unwritten are logged and counted in ``lost``.

>>> from tailorbot.archive import open_archive
>>> writer = ArchiveWriter(open_archive("postgresql://postgres@127.0.0.1/test"))  # doctest: +SKIP
>>> writer.put("decision", {"decision_id": "d1", "user_id": "u1"})  # doctest: +SKIP
>>> writer.close()  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Mapping
from typing import Any

from tailorbot.archive.base import ArchiveError, EventArchive

logger = logging.getLogger(__name__)

KINDS = ("decision", "feedback")
MAX_BACKOFF_S = 5.0

Entry = tuple[str, Mapping[str, Any]]


class ArchiveWriter:
    """A bounded queue of decision/feedback records and the thread that archives them.

    Parameters
    ----------
    archive
        Where the records go.
    max_pending
        Records queued at most; past it :meth:`put` writes synchronously.
    batch
        Records the thread takes per turn.
    """

    def __init__(self, archive: EventArchive, max_pending: int = 10_000, batch: int = 256) -> None:
        if max_pending < 1 or batch < 1:
            raise ValueError("max_pending and batch must be >= 1")
        self.archive = archive
        self.max_pending = max_pending
        self.batch = batch
        self.written = 0  # records archived (new or already there)
        self.lost = 0  # records given up on at close (archive unreachable) or malformed
        self._pending: deque[Entry] = deque()
        self._busy = 0  # records taken by the thread and not yet done
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._closed = False

    def start(self) -> None:
        """Start the writing thread now; else the first :meth:`put` starts it. A thread takes
        the CPU priority of the thread that starts it, and the first ``put`` may come from
        the decision recorder's niced writer (:mod:`tailorbot._priority`)."""
        with self._cond:
            self._start_thread()

    def _start_thread(self) -> None:
        if self._thread is None and not self._closed:
            self._thread = threading.Thread(
                target=self._run, name="tailorbot-archive-writer", daemon=True
            )
            self._thread.start()

    def put(self, kind: str, record: Mapping[str, Any]) -> None:
        """Queue a record (``kind`` is ``decision`` or ``feedback``); when the queue is full,
        write it now (raises :class:`ArchiveError` if that fails)."""
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
        entry = (kind, dict(record))  # the caller may reuse its dict
        with self._cond:
            if self._closed:
                raise RuntimeError("the archive writer is closed")
            if len(self._pending) < self.max_pending:
                self._pending.append(entry)
                self._cond.notify_all()
                self._start_thread()
                return
        self._write(entry)
        with self._cond:
            self.written += 1

    def flush(self, timeout_s: float | None = None) -> bool:
        """Wait until every queued record is written; False if ``timeout_s`` passed first."""
        with self._cond:
            return self._cond.wait_for(lambda: not self._pending and not self._busy, timeout_s)

    def close(self) -> None:
        """Write what is queued (one try each batch), then stop the thread. Idempotent."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join()

    # --- the thread -------------------------------------------------------------------

    def _run(self) -> None:
        backoff = 0.0
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._pending or self._closed)
                if not self._pending:
                    return  # closed and drained
                take = min(self.batch, len(self._pending))
                batch = [self._pending.popleft() for _ in range(take)]
                self._busy = take
            failed = self._write_batch(batch)
            with self._cond:
                self._busy = 0
                if failed is None:
                    backoff = 0.0
                elif self._closed:
                    lost = len(failed) + len(self._pending)
                    self._pending.clear()
                    self.lost += lost
                    logger.error("archive unreachable at close: %s records not archived", lost)
                else:
                    self._pending.extendleft(reversed(failed))  # retried first, in order
                    backoff = min(MAX_BACKOFF_S, backoff * 2 or 0.05)
                self._cond.notify_all()
                if failed is not None and not self._closed:
                    self._cond.wait_for(lambda: self._closed, backoff)

    def _write_batch(self, batch: list[Entry]) -> list[Entry] | None:
        """Write ``batch``; None when done, else the entries left (from the failing one)."""
        for index, entry in enumerate(batch):
            try:
                self._write(entry)
            except ArchiveError as exc:
                logger.warning("archive write failed, will retry %s records: %s", len(batch), exc)
                return batch[index:]
            except ValueError as exc:  # a malformed record: retrying cannot fix it
                logger.error("not archiving a malformed %s record: %s", entry[0], exc)
                with self._cond:
                    self.lost += 1
                continue
            with self._cond:
                self.written += 1
        return None

    def _write(self, entry: Entry) -> None:
        kind, record = entry
        if kind == "decision":
            self.archive.write_decision(record)
        else:
            self.archive.write_feedback(record)
