"""The archive worker: log records in, archive rows out, offsets committed after.

It reads the event log as its own consumer group (``<consumer_group>-archive``), so archiving
never slows the feature path and either can fall behind or restart alone. One
:meth:`ArchiveWorker.run_once` polls up to ``settings.worker_batch`` records, decodes them,
drops the records of erased users, writes the rest with one ``archive.write_events`` and
only *then* commits. A crash before the commit re-delivers the batch; the archive ignores an
``event_id`` it holds already, so every event is archived exactly once.

Erasure: the log's records are already redacted (no raw PII reaches the archive), and a
user's erasure leaves a watermark in the online store. Records of an erased user below it
are not archived, and an erasure that lands between reading the watermarks and the write
(whose rows the write may re-create) is noticed by reading them again after the write,
and the user's rows are erased once more.

Counts (``counts``): ``archived`` (new rows), ``duplicate`` (archived before: a redelivery),
``erased`` and ``malformed`` (undecodable; logged, since retrying cannot fix it).

>>> import tempfile
>>> from tailorbot.config import Settings
>>> archive_group(Settings(data_dir=tempfile.mkdtemp()))
'tailorbot-features-archive'
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

from tailorbot.archive.base import EventArchive
from tailorbot.config import Settings
from tailorbot.events.codec import decode_event, event_epoch
from tailorbot.log.base import Consumer, EventLog, LogRecord
from tailorbot.metrics import Metrics
from tailorbot.store.base import OnlineStore
from tailorbot.stream.loop import ConsumerLoop

logger = logging.getLogger(__name__)

LAG_EVERY_S = 1.0  # how often the archive_lag gauge is refreshed
COUNTS = ("archived", "duplicate", "erased", "malformed")
_REQUIRED = ("event_id", "session_id", "type")

# One decoded record: (log record, event dict).
Item = tuple[LogRecord, dict[str, Any]]


def archive_group(settings: Settings) -> str:
    """The consumer group of the archive workers."""
    return f"{settings.consumer_group}-archive"


class ArchiveWorker(ConsumerLoop):
    """Copies the event log into ``archive`` as one member of :func:`archive_group`.

    ``store`` supplies the erasure watermarks; ``metrics`` (optional) receives
    events_archived and archive_lag; ``member_id`` names this member (the log picks one if
    None).
    """

    name = "archive worker"

    def __init__(
        self,
        log: EventLog,
        archive: EventArchive,
        store: OnlineStore,
        settings: Settings,
        metrics: Metrics | None = None,
        member_id: str | None = None,
    ) -> None:
        super().__init__(log, settings, archive_group(settings), member_id)
        self.archive = archive
        self.store = store
        self.metrics = metrics
        self._lag_at = 0.0
        self.counts: dict[str, int] = dict.fromkeys(COUNTS, 0)

    # --- one batch --------------------------------------------------------------------------

    def run_once(self) -> int:
        """Poll, archive, commit one batch; return how many log records it handled."""
        consumer = self._join()
        records = consumer.poll(self.settings.worker_batch, timeout_s=0.0)
        if records:
            counts = dict.fromkeys(COUNTS, 0)
            self._archive(self._decode(records, counts), counts)
            self._commit(consumer, records)
            self._count(counts)  # once committed: a redelivered batch counts as duplicates
        self._refresh_lag(consumer)
        return len(records)

    def _decode(self, records: Sequence[LogRecord], counts: dict[str, int]) -> list[Item]:
        items: list[Item] = []
        for record in records:
            try:
                event = decode_event(record.value)
                event_epoch(event)  # the archive needs a readable timestamp
                if type(event.get("user_id")) is not str or not all(
                    event.get(name) for name in _REQUIRED
                ):
                    raise ValueError("user_id, event_id, session_id and type must be set")
            except (ValueError, TypeError, KeyError, AttributeError) as exc:
                counts["malformed"] += 1
                logger.error(
                    "not archiving malformed log record partition=%s offset=%s: %s",
                    record.partition,
                    record.offset,
                    exc,
                )
                continue
            items.append((record, event))
        return items

    def _archive(self, items: list[Item], counts: dict[str, int]) -> None:
        users = {event["user_id"] for _, event in items}
        before = self.store.erasure_watermarks(users) if users else {}
        kept = _unerased(items, before)
        counts["erased"] += len(items) - len(kept)
        new = self._write_events(kept) if kept else 0
        counts["archived"] += new
        counts["duplicate"] += len(kept) - new
        if not kept:
            return
        # An erasure between the first read and the write may have deleted the user's rows
        # before this write re-created them: erase again, then re-write what is after it.
        after = self.store.erasure_watermarks(users)
        for user, watermark in after.items():
            if before.get(user) == watermark:
                continue
            self.archive.erase_user(user)
            survivors = _unerased([item for item in kept if item[1]["user_id"] == user], after)
            if survivors:
                self.archive.write_events([event for _, event in survivors])

    def _write_events(self, items: list[Item]) -> int:
        return self.archive.write_events([event for _, event in items])

    def _commit(self, consumer: Consumer, records: Sequence[LogRecord]) -> None:
        offsets: dict[int, int] = {}
        for record in records:  # each partition's records come in offset order
            offsets[record.partition] = record.offset + 1
        consumer.commit(offsets)

    def _count(self, counts: dict[str, int]) -> None:
        for name, n in counts.items():
            self.counts[name] += n
        if self.metrics is not None and counts["archived"]:
            self.metrics.events_archived.inc(counts["archived"])

    def _refresh_lag(self, consumer: Consumer) -> None:
        if self.metrics is None or time.monotonic() - self._lag_at < LAG_EVERY_S:
            return
        self._lag_at = time.monotonic()
        lag = self.log.lag(self.group)
        for partition in consumer.assignment():
            self.metrics.archive_lag.labels(partition=str(partition)).set(lag.get(partition, 0))


def _unerased(items: list[Item], watermarks: dict[str, int]) -> list[Item]:
    """The items not below their user's erasure watermark."""
    if not watermarks:
        return items
    return [
        (record, event)
        for record, event in items
        if record.offset >= watermarks.get(event["user_id"], -1)
    ]
