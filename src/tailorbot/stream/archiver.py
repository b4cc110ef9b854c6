"""The archive worker: log records in, archive rows out, offsets committed after.

It reads the event log as its own consumer group (``<consumer_group>-archive``), so archiving
never slows the feature path and either can fall behind or restart alone. One
:meth:`ArchiveWorker.run_once` polls up to ``settings.worker_batch`` records, decodes them,
drops the records of erased users, writes the rest with one ``archive.write_events`` and
only *then* commits. A crash before the commit re-delivers the batch; the archive ignores an
``event_id`` it holds already, so every event is archived exactly once.

Erasure: the log's records are already redacted (no raw PII reaches the archive), and a
user's erasure leaves a watermark and its time in the online store. Records of an erased
user below the watermark, or dated before the erasure, are not archived, and an erasure that
lands between reading the erasures and the write (whose rows the write may re-create) is
noticed by reading them again after the write, and the user's rows are erased once more.

Counts (``counts``): ``archived`` (new rows), ``duplicate`` (archived before: a redelivery),
``erased`` and ``malformed`` (undecodable; logged, since retrying cannot fix it).

Poison records: a record the archive refuses for good (:class:`RecordRefused`, e.g. a U+0000
that PostgreSQL's jsonb cannot hold) or cannot decode goes, with ``dead_letters``, to the
dead letters with the reason (``tailorbot_dead_letters_total{group}``) and the rest of the
batch is archived and committed; without, the batch fails and is retried as before.

>>> import tempfile
>>> from tailorbot.config import Settings
>>> archive_group(Settings(data_dir=tempfile.mkdtemp()))
'tailorbot-features-archive'
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence

from tailorbot.archive.base import EventArchive, RecordRefused
from tailorbot.config import Settings
from tailorbot.dlq.base import DeadLetterStore
from tailorbot.log.base import EventLog, LogRecord
from tailorbot.metrics import Metrics
from tailorbot.store.base import Erasure, FeatureStore
from tailorbot.stream.loop import ConsumerLoop, Item, decode_records

COUNTS = ("archived", "duplicate", "erased", "malformed")


def archive_group(settings: Settings) -> str:
    """The consumer group of the archive workers."""
    return f"{settings.consumer_group}-archive"


class ArchiveWorker(ConsumerLoop):
    """Copies the event log into ``archive`` as one member of :func:`archive_group`.

    ``watermarks`` (the feature store) supplies the erasure watermarks; ``metrics``
    (optional) receives events_archived and archive_lag; ``member_id`` names this member (the
    log picks one if None).
    """

    name = "archive worker"

    def __init__(
        self,
        log: EventLog,
        archive: EventArchive,
        watermarks: FeatureStore,
        settings: Settings,
        metrics: Metrics | None = None,
        member_id: str | None = None,
        dead_letters: DeadLetterStore | None = None,
    ) -> None:
        lag_gauge = metrics.archive_lag if metrics is not None else None
        super().__init__(
            log,
            settings,
            archive_group(settings),
            member_id,
            COUNTS,
            lag_gauge,
            dead_letters,
            metrics.dead_letters if metrics is not None else None,
        )
        self.archive = archive
        self.watermarks = watermarks
        self.metrics = metrics
        if metrics is not None:
            self.error_counter = metrics.worker_batch_errors.labels(worker="archiver")

    def run_once(self, wait_s: float = 0.0) -> int:
        """Poll (waiting up to ``wait_s`` for records), archive, commit one batch; return how
        many log records it handled."""
        consumer = self._join()
        records = consumer.poll(self.settings.worker_batch, timeout_s=wait_s)
        if records:
            counts = self._new_counts()
            refused: list[tuple[LogRecord, str]] = []
            items = decode_records(records, counts, refused)
            for record, reason in refused:
                self._dead_letter(record, reason)
            self._archive(items, counts)
            self._commit(consumer, records)
            self._add_counts(counts)
            if self.metrics is not None:
                self.metrics.events_archived.inc(counts["archived"])
                self.metrics.archive_dead_letters.inc(counts["malformed"])
        self._refresh_lag(consumer)
        return len(records)

    def _erasures(self, users: Collection[str]) -> Mapping[str, Erasure]:
        return self.watermarks.erasures(users)

    def _archive(self, items: Sequence[Item], counts: dict[str, int]) -> None:
        users = {event["user_id"] for _, event, _ in items}
        before = self.watermarks.erasures(users) if users else {}
        kept = _unerased(items, before)
        counts["erased"] += len(items) - len(kept)
        new = self._write_events(kept) if kept else 0
        counts["archived"] += new
        counts["duplicate"] += len(kept) - new
        if not kept:
            return
        # An erasure between the first read and the write may have deleted the user's rows
        # before this write re-created them: erase again, then re-write what is after it.
        after = self.watermarks.erasures(users)
        for user, erasure in after.items():
            if before.get(user) == erasure:
                continue
            self.archive.erase_user(user)
            survivors = _unerased([item for item in kept if item[1]["user_id"] == user], after)
            if survivors:
                self.archive.write_events([event for _, event, _ in survivors])

    def _write_events(self, items: Sequence[Item]) -> int:
        """Write the events of ``items``; how many were new (the rest were archived before).

        When the archive refuses the batch for good (:class:`RecordRefused`), halves are
        written until each refused record is alone: it goes to the dead letters, the rest is
        written (a poison record costs about 2·log2(batch) extra writes)."""
        try:
            return self.archive.write_events([event for _, event, _ in items])
        except RecordRefused as exc:
            if len(items) == 1:
                record, _, ts = items[0]
                if not self._dead_letter(record, f"archive refused it: {exc}", ts):
                    raise
                return 0
            if self.dead_letters is None:
                raise
            middle = len(items) // 2
            return self._write_events(items[:middle]) + self._write_events(items[middle:])


def _unerased(items: Sequence[Item], erasures: dict[str, Erasure]) -> list[Item]:
    """The items their user's erasure does not drop (:meth:`Erasure.drops`)."""
    if not erasures:
        return list(items)
    return [
        (record, event, ts)
        for record, event, ts in items
        if (erasure := erasures.get(event["user_id"])) is None
        or not erasure.drops(record.offset, ts)
    ]
