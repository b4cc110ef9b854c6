"""What every consumer-group worker shares: the batch loop, the one error handler, joining
and leaving the group, decoding records, committing offsets, counting and the lag gauge.

A subclass implements :meth:`ConsumerLoop.run_once` (poll one batch, apply it, and only then
commit) and may hook :meth:`_discard` (drop what a failed batch collected), :meth:`_on_join`
(before joining: partitions may have moved meanwhile), :meth:`_linger_after` and
:meth:`_erasures` (the users' erasures, so that no dead letter outlives its user's erasure).

>>> record = LogRecord(0, 7, "u1", b'{"event_id": "e1", "user_id": "u1", "session_id": "s1",'
...                    b' "type": "session_started", "timestamp": "2026-01-01T00:00:00Z"}')
>>> counts = {"malformed": 0}
>>> [(r.offset, ts) for r, _, ts in decode_records([record, LogRecord(0, 8, "u1", b"{")], counts)]
[(7, 1767225600.0)]
>>> counts, next_offsets([record])
({'malformed': 1}, {0: 8})
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Collection, Mapping, Sequence
from typing import Any

from prometheus_client import Counter, Gauge

from tailorbot.config import Settings
from tailorbot.dlq.base import DeadLetter, DeadLetterStore
from tailorbot.events.codec import MALFORMED, applicable_event
from tailorbot.log.base import Consumer, EventLog, LogRecord
from tailorbot.store.base import Erasure

logger = logging.getLogger(__name__)

FIRST_BACKOFF_S = 0.05  # the pause after a first failing batch (it doubles after each)
MAX_BACKOFF_S = 5.0  # the longest pause after failing batches
LAG_EVERY_S = 1.0  # how often the lag gauge is refreshed

# One decoded record: (log record, event dict, event time in epoch seconds).
Item = tuple[LogRecord, dict[str, Any], float]
UNDATED = float("inf")  # the event time of a record that could not be read: never "before"


def decode_records(
    records: Sequence[LogRecord],
    counts: dict[str, int],
    refused: list[tuple[LogRecord, str]] | None = None,
) -> list[Item]:
    """Decoded events with their epoch time; a record that holds no applicable event
    (:func:`~tailorbot.events.codec.applicable_event`) is logged, counted under
    ``counts["malformed"]`` and, with ``refused``, listed there with
    the reason, since retrying cannot fix it."""
    items: list[Item] = []
    for record in records:
        try:
            event, ts = applicable_event(record.value)
        except MALFORMED as exc:
            counts["malformed"] += 1
            if refused is not None:
                refused.append((record, f"undecodable: {exc}"))
            logger.error(
                "skipping malformed log record partition=%s offset=%s: %s",
                record.partition,
                record.offset,
                exc,
            )
            continue
        items.append((record, event, ts))
    return items


def next_offsets(records: Sequence[LogRecord]) -> dict[int, int]:
    """Per partition, the offset after the batch's last record (what to commit)."""
    offsets: dict[int, int] = {}
    for record in records:  # each partition's records come in offset order
        offsets[record.partition] = record.offset + 1
    return offsets


class ConsumerLoop(ABC):
    """One member of consumer group ``group`` of ``log``, running batches until stopped."""

    name = "worker"  # in log messages

    def __init__(
        self,
        log: EventLog,
        settings: Settings,
        group: str,
        member_id: str | None,
        counts: Sequence[str],
        lag_gauge: Gauge | None = None,
        dead_letters: DeadLetterStore | None = None,
        dead_letter_counter: Counter | None = None,
    ) -> None:
        self.log = log
        self.settings = settings
        self.group = group
        self.member_id = member_id
        self.lag_gauge = lag_gauge
        self.counts: dict[str, int] = dict.fromkeys(counts, 0)  # totals, once committed
        self._consumer: Consumer | None = None
        self._closed = False
        self._lag_at = 0.0
        self._lag_reported: set[int] = set()  # partitions whose lag the gauge shows
        self.errors = 0  # batches that failed (see run)
        self.error_counter: Any = None  # a subclass's Prometheus counter of failed batches
        self.dead_letters = dead_letters
        self.dead_letter_counter = dead_letter_counter
        # of the current batch, with their event times, kept before its commit
        self._letters: list[tuple[DeadLetter, float]] = []

    @abstractmethod
    def run_once(self, wait_s: float = 0.0) -> int:
        """Poll (waiting up to ``wait_s`` for records while there are none), apply, commit
        one batch; return how many log records it handled."""

    def run(self, stop_event: threading.Event) -> None:
        """Run batches until ``stop_event`` is set.

        An idle worker waits inside the log's poll, which returns as soon as records arrive
        (Redis blocks on the streams, Kafka on its fetch, SQLite checks the file's change
        counter after pauses of 1 ms doubling up to 16 ms), for at most ``worker_poll_s`` at
        a time. A failing batch (a backend unreachable...) goes to :meth:`_on_error`: logged,
        counted, and retried after a growing pause, from the last committed offsets.
        """
        backoff = 0.0
        while not stop_event.is_set() and not self._closed:
            try:
                handled = self.run_once(self.settings.worker_poll_s)
            except Exception as exc:  # noqa: BLE001 - one handler for every batch failure
                backoff = self._on_error(exc, backoff)
                stop_event.wait(backoff)
                continue
            backoff = 0.0
            if handled:
                self._linger_after(handled, stop_event)

    def _new_counts(self) -> dict[str, int]:
        return dict.fromkeys(self.counts, 0)

    def _add_counts(self, counts: dict[str, int]) -> None:
        """Add a committed batch's counts to the totals (a redelivered batch counts again,
        as duplicates)."""
        for name, n in counts.items():
            self.counts[name] += n

    def _commit(self, consumer: Consumer, records: Sequence[LogRecord]) -> None:
        """Keep the batch's dead letters, then commit the offsets after ``records`` (only
        once the batch was applied): a crash in between re-reads the batch and puts the same
        letters again (they replace themselves)."""
        self._put_letters()
        consumer.commit(next_offsets(records))

    def _put_letters(self) -> None:
        """Put the letters set aside so far in the dead-letter store, but none of a user
        erased after the letter's record (:meth:`Erasure.drops`, the rule that drops the
        events of erased users): an erasure between the poll and now deleted the user's
        letters already. One that runs while they are put is noticed by reading the erasures
        again after the put (an erasure deletes the letters after setting its watermark), and
        those letters are dropped again."""
        pending, self._letters = self._letters, []
        if not pending or self.dead_letters is None:
            return
        before = self._erasures({letter.key for letter, _ in pending})
        kept = _unerased_letters(pending, before)
        if not kept:
            return
        self.dead_letters.put([letter for letter, _ in kept])
        after = self._erasures({letter.key for letter, _ in kept})
        if any(before.get(user) != erasure for user, erasure in after.items()):
            gone = {letter.letter_id for letter, _ in kept} - {
                letter.letter_id for letter, _ in _unerased_letters(kept, after)
            }
            self.dead_letters.drop(gone)
            kept = [(letter, ts) for letter, ts in kept if letter.letter_id not in gone]
        if kept and self.dead_letter_counter is not None:
            self.dead_letter_counter.labels(group=self.group).inc(len(kept))
        for letter, _ in kept:
            logger.error(
                "%s: record partition=%s offset=%s put in the dead letters: %s",
                self.name,
                letter.partition,
                letter.offset,
                letter.reason,
            )

    def _erasures(self, users: Collection[str]) -> Mapping[str, Erasure]:
        """The erasures of those of ``users`` who were erased (none known by default)."""
        return {}

    def _dead_letter(self, record: LogRecord, reason: str, event_time: float = UNDATED) -> bool:
        """Set ``record`` (its event dated ``event_time``, when known) aside for the dead
        letters at the batch's commit; False when this worker has no dead-letter store (the
        caller then skips the record or fails the batch)."""
        if self.dead_letters is None:
            return False
        letter = DeadLetter(
            self.group,
            record.partition,
            record.offset,
            record.key,
            record.value,
            reason,
            time.time(),
        )
        self._letters.append((letter, event_time))
        return True

    def _refresh_lag(self, consumer: Consumer) -> None:
        """Set the lag gauge of the owned partitions, at most every ``LAG_EVERY_S``."""
        if self.lag_gauge is None or time.monotonic() - self._lag_at < LAG_EVERY_S:
            return
        self._lag_at = time.monotonic()
        lag = self.log.lag(self.group)
        owned = consumer.assignment()
        for partition in owned:
            self.lag_gauge.labels(partition=str(partition)).set(lag.get(partition, 0))
        for partition in self._lag_reported - owned:  # lost in a rebalance: not ours to report
            with contextlib.suppress(KeyError):
                self.lag_gauge.remove(str(partition))
        self._lag_reported = set(owned)

    def _linger_after(self, handled: int, stop_event: threading.Event) -> None:  # noqa: B027
        """Called after a batch of ``handled`` records; a subclass may wait a little."""

    def _on_error(self, exc: Exception, backoff: float) -> float:
        """Log and count ``exc``; leave the group so the batch is read again; next pause."""
        self.errors += 1
        if self.error_counter is not None:
            self.error_counter.inc()
        self._letters.clear()
        self._discard()
        pause = min(MAX_BACKOFF_S, backoff * 2 or FIRST_BACKOFF_S)
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


def _unerased_letters(
    letters: Sequence[tuple[DeadLetter, float]], erasures: Mapping[str, Erasure]
) -> list[tuple[DeadLetter, float]]:
    """The letters (with their event times) that their user's erasure does not drop."""
    if not erasures:
        return list(letters)
    return [
        (letter, ts)
        for letter, ts in letters
        if (erasure := erasures.get(letter.key)) is None or not erasure.drops(letter.offset, ts)
    ]
