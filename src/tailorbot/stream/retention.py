"""Retention: the log and the decisions do not grow forever.

Per partition, records are trimmed when they are older than ``log_retention_s`` (by their
``ingested_at``) or beyond the newest ``log_retention_records`` — but never past the lowest
offset committed by the consumer groups that must read them (the stream worker's and, with an
archive, the archive worker's): a record is only dropped once it was applied (and archived).
Decisions older than ``decision_retention_s`` are deleted (feedback for them is then a 404).

Consequences for replay: whatever reads the log from its beginning (``tailorbot
evaluate-recs``, rebuilding features under a new consumer group, re-archiving) sees only the
records still retained; keep the archive (``archive_url``) for the full history.

The stream worker runs it every ``retention_every_s``; several workers may, trimming is
idempotent.

>>> import tempfile, time
>>> from tailorbot.config import Settings
>>> from tailorbot.log import open_log
>>> settings = Settings(data_dir=tempfile.mkdtemp(), log_retention_records=2, partitions=1)
>>> log = open_log(settings.resolved_log_url(), 1)
>>> _ = log.append([("u1", b'{"ingested_at": 0}')] * 5)
>>> log.consumer("g").commit({0: 5})
>>> Retention(log, None, settings, groups=["g"]).run(now=time.time())
{'log_records': 3, 'decisions': 0}
>>> [r.offset for r in log.read_all(0)]
[3, 4]
>>> log.close()
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import orjson

from tailorbot.config import Settings
from tailorbot.log.base import EventLog
from tailorbot.store.base import DecisionStore

logger = logging.getLogger(__name__)

SCAN_BATCH = 500  # records read at a time when looking for the first one young enough


class Retention:
    """Trims ``log`` (for ``groups``) and purges ``decisions`` by ``settings``' retention."""

    def __init__(
        self,
        log: EventLog,
        decisions: DecisionStore | None,
        settings: Settings,
        groups: Sequence[str],
    ) -> None:
        self.log = log
        self.decisions = decisions
        self.settings = settings
        self.groups = tuple(groups)
        self._ran_at = float("-inf")

    def due(self, now: float) -> bool:
        return now - self._ran_at >= self.settings.retention_every_s

    def run(self, now: float) -> dict[str, int]:
        """Trim and purge once; how many log records and decisions went."""
        self._ran_at = now
        settings = self.settings
        trimmed = 0
        if settings.log_retention_s is not None or settings.log_retention_records is not None:
            trimmed = self._trim_log(now)
        purged = 0
        if settings.decision_retention_s is not None and self.decisions is not None:
            purged = self.decisions.purge(now - settings.decision_retention_s)
        return {"log_records": trimmed, "decisions": purged}

    def _trim_log(self, now: float) -> int:
        ends = self.log.end_offsets()
        committed = [self.log.committed(group) for group in self.groups]
        trimmed = 0
        for partition in range(self.log.num_partitions):
            consumed = min((c.get(partition, 0) for c in committed), default=0)
            before = min(consumed, self._wanted(partition, ends.get(partition, 0), now))
            if before > 0:
                try:
                    trimmed += self.log.trim(partition, before)
                except NotImplementedError:
                    return 0  # the log keeps its own retention (Kafka)
        return trimmed

    def _wanted(self, partition: int, end: int, now: float) -> int:
        """The offset below which records are past retention (age or size)."""
        settings = self.settings
        before = 0
        if settings.log_retention_records is not None:
            before = max(before, end - settings.log_retention_records)
        if settings.log_retention_s is not None:
            before = max(before, self._first_young(partition, now - settings.log_retention_s))
        return before

    def _first_young(self, partition: int, cutoff: float) -> int:
        """The offset of the first retained record ingested at or after ``cutoff``."""
        offset = 0
        while True:
            records = self.log.read(partition, offset, SCAN_BATCH)
            if not records:
                return offset
            for record in records:
                if _ingested_at(record.value) >= cutoff:
                    return record.offset
            offset = records[-1].offset + 1


def _ingested_at(value: bytes) -> float:
    try:
        event: Any = orjson.loads(value)
        return float(event.get("ingested_at", float("inf")))
    except (orjson.JSONDecodeError, AttributeError, TypeError, ValueError):
        return float("inf")  # unreadable: keep (the dead letters take it)
