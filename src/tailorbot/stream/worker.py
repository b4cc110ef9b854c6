"""The stream worker: log records in, per-user feature records out, offsets committed after.

One :meth:`StreamWorker.run_once` polls up to ``settings.worker_batch`` records, groups them
by user, loads those users' feature records, erasures and profiles in three
batched store calls, applies the events, writes the changed records with one
``put_many`` and only *then* commits the next offsets to the log. A crash anywhere
before the commit re-delivers the batch; nothing is counted twice because

* a record at or below the offset stored with the user's feature record was applied already
  (the record is written before the commit), and
* :func:`~tailorbot.features.state.apply_outcome` ignores an event id it has seen.

The records a worker wrote are kept in a :class:`~tailorbot.stream.state_cache.StateCache`
(``state_cache_size`` users), so that the next batch of the same users reads neither the store
nor decodes their states again; the cache answers only while this member's own writes are
provably the latest (see that module). A worker that is a process of its own pauses cyclic
garbage collection during a batch and freezes the batch's survivors after it (``pause_gc``,
stream/collector.py).

Skipped records are counted in ``events_skipped{reason}``: ``duplicate`` (already applied),
``late`` (below the user's cut, docs/features.md), ``no_consent`` (no personalization
consent: no feature state is built), ``erased`` (below the user's erasure watermark, or dated
before the erasure: made before it but appended after, e.g. a feedback in flight) and
``malformed`` (undecodable, or decoded but refused by the feature state: logged, since
retrying cannot fix it).

Poison records: when applying a user's events raises anything but a
:class:`~tailorbot.errors.BackendError` (which fails the batch: retried), they are applied
again one by one from the state before the batch, and each that raises goes (with
``dead_letters``) to the dead letters with the reason; the batch goes on. The letters are put
before the feature records, whose offsets pass them (a crash in between re-reads the batch).

>>> import tempfile
>>> from tailorbot.config import Settings
>>> from tailorbot.log import open_log
>>> from tailorbot.store import open_stores
>>> settings = Settings(data_dir=tempfile.mkdtemp())
>>> log = open_log(settings.resolved_log_url(), settings.partitions)
>>> stores = open_stores(settings.resolved_store_url())
>>> worker = StreamWorker(log, stores, settings)
>>> worker.run_once()
0
>>> worker.close(); log.close(); stores.close()
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Collection, Iterable, Mapping
from typing import Any

import orjson

from tailorbot.config import Settings
from tailorbot.dlq.base import DeadLetterStore
from tailorbot.errors import BackendError
from tailorbot.events.profile import consents_to_personalization
from tailorbot.features.params import FeatureParams
from tailorbot.features.state import (
    ANNOTATION,
    APPLIED,
    DUPLICATE,
    STATE_VERSION,
    State,
    apply_outcome,
    dedupe_change,
    new_state,
)
from tailorbot.log.base import Consumer, EventLog, LogRecord
from tailorbot.metrics import Metrics
from tailorbot.store.base import DedupeDelta, Erasure, FeatureRecord, Stores
from tailorbot.store.state_blob import DEDUPE_KEY
from tailorbot.stream.article_stats import ArticleStatsCollector
from tailorbot.stream.collector import BatchCollector
from tailorbot.stream.loop import ConsumerLoop, Item, decode_records, next_offsets
from tailorbot.stream.retention import Retention
from tailorbot.stream.state_cache import StateCache

logger = logging.getLogger(__name__)

STATE_CACHE_SIZE = 100_000  # users whose written records a worker keeps (stream/state_cache.py)
# Seconds a kept record may go unused: a conversation's next message comes well within it, and
# a user's data (an erased user's too) leaves the worker's memory at most that long after.
STATE_CACHE_IDLE_S = 600.0
SKIP_REASONS = ("duplicate", "late", "no_consent", "erased", "malformed", "annotation")


class StreamWorker(ConsumerLoop):
    """Applies the event log to the online store as one member of ``settings.consumer_group``.

    ``metrics`` (optional) receives events_applied, events_skipped, processor_lag,
    apply_latency and freshness; ``member_id`` names this member (the log picks one if None);
    ``state_cache_size`` is how many users' written records are kept for their next batches
    (0: none, every batch reads the store; see stream/state_cache.py for the memory it takes),
    ``state_cache_idle_s`` how long one is kept unused (it bounds how long a user's data, an
    erased user's included, stays in this process's memory).
    ``pause_gc`` pauses cyclic garbage collection during each batch and freezes its survivors
    after it (:class:`~tailorbot.stream.collector.BatchCollector`): for a worker that is a
    process of its own (``tailorbot worker``), never for the worker thread of an API process,
    whose handlers would lose the collector meanwhile.
    """

    name = "stream worker"

    def __init__(
        self,
        log: EventLog,
        stores: Stores,
        settings: Settings,
        metrics: Metrics | None = None,
        member_id: str | None = None,
        state_cache_size: int = STATE_CACHE_SIZE,
        state_cache_idle_s: float = STATE_CACHE_IDLE_S,
        pause_gc: bool = False,
        dead_letters: DeadLetterStore | None = None,
        retention: Retention | None = None,
    ) -> None:
        lag_gauge = metrics.processor_lag if metrics is not None else None
        super().__init__(
            log,
            settings,
            settings.consumer_group,
            member_id,
            (APPLIED, *SKIP_REASONS),
            lag_gauge,
            dead_letters,
            metrics.dead_letters if metrics is not None else None,
        )
        self.stores = stores
        self.metrics = metrics
        if metrics is not None:
            self.error_counter = metrics.worker_batch_errors.labels(worker="stream")
        self.state_cache_size = state_cache_size
        self.state_cache_idle_s = state_cache_idle_s
        self.pause_gc = pause_gc
        self._collector = BatchCollector() if pause_gc else None
        self.retention = retention
        self._params = FeatureParams.of(settings)
        self._states = StateCache(state_cache_size, max_idle_s=state_cache_idle_s)
        self._article_stats = ArticleStatsCollector()
        # The runtime sets a span per batch when tracing is on (telemetry/tracing.py).
        self.trace_batch: Callable[[Iterable[dict[str, Any]], int], Any] = _untraced

    # --- one batch --------------------------------------------------------------------------

    def run_once(self, wait_s: float = 0.0) -> int:
        """Poll (waiting up to ``wait_s`` for records), apply, write, commit one batch;
        return how many log records it handled."""
        consumer = self._join()
        records = consumer.poll(self.settings.worker_batch, timeout_s=wait_s)
        if not records:
            self._refresh_lag(consumer)
        elif self._collector is None:
            self._run_batch(consumer, records)
        else:
            with self._collector.batch():
                self._run_batch(consumer, records)
        self._states.expire()  # idle users' data leaves memory, whether or not they return
        self._maybe_retain()
        return len(records)

    def _maybe_retain(self) -> None:
        """Run retention when due; a failure is logged and retried at the next period (the
        batches go on: retention is housekeeping)."""
        now = time.time()
        if self.retention is None or not self.retention.due(now):
            return
        try:
            done = self.retention.run(now)
        except Exception as exc:  # noqa: BLE001 - housekeeping must not stop the worker
            logger.warning(
                "retention failed; retrying in %.0f s: %r", self.settings.retention_every_s, exc
            )
            return
        if any(done.values()):
            logger.info(
                "retention removed %s log records and %s decisions",
                done["log_records"],
                done["decisions"],
            )

    def _run_batch(self, consumer: Consumer, records: list[LogRecord]) -> None:
        started = time.perf_counter()
        counts = self._new_counts()
        by_user: dict[str, list[Item]] = {}
        refused: list[tuple[LogRecord, str]] = []
        for item in decode_records(records, counts, refused):
            by_user.setdefault(item[1]["user_id"], []).append(item)
        for record, reason in refused:
            self._dead_letter(record, reason)
        first: dict[int, int] = {}
        for record in records:  # each partition's records come in offset order
            first.setdefault(record.partition, record.offset)
        offsets = next_offsets(records)
        states = self._states
        try:
            owned = consumer.assignment()
            # Whether anyone else committed our partitions since our last batch (one cheap
            # read; only the cache needs it).
            committed = self.log.committed(self.settings.consumer_group) if len(states) else {}
            states.begin(owned, committed, first)
            events = (item[1] for items in by_user.values() for item in items)
            with self.trace_batch(events, len(records)):
                writes, ingested = self._apply(by_user, counts)
                increments = self._article_stats.take()
                self._put_letters()  # before the records whose offsets pass them
                written: set[str] = set()
                if writes:
                    # article counters in the same atomic write as their users' records
                    written = self.stores.features.put_many(writes, increments)
            # Counted once written: a batch re-read after a failed commit counts as duplicates.
            self._count(counts, ingested, written_at=time.time())
            self._commit(consumer, records)
        except BaseException:
            # The batch is read again: its users' cached states may be half-applied, or
            # ahead of the store.
            states.discard(by_user)
            raise
        # A record the fence skipped is not what the store holds (someone wrote a newer one):
        # the next batch reads the store. The others, as the store holds them now, are kept.
        kept = [write for write in writes if write.user_id in written]
        for write in kept:
            write.mark_written()
        states.discard(write.user_id for write in writes if write.user_id not in written)
        states.keep(kept, offsets)
        if self.metrics is not None:
            self.metrics.apply_latency.observe(time.perf_counter() - started)
        self._refresh_lag(consumer)

    def _apply(
        self, by_user: dict[str, list[Item]], counts: dict[str, int]
    ) -> tuple[list[FeatureRecord], list[float]]:
        if not by_user:
            return [], []
        users = list(by_user)
        features = self.stores.features
        erasures = features.erasures(users)
        profiles = self.stores.profiles.get_many(users)
        stored: dict[str, FeatureRecord] = {}
        missing: list[str] = []
        states = self._states
        for user, items in by_user.items():
            record = states.get(user, items[0][0].partition)
            if record is None:
                missing.append(user)
                continue
            erasure = erasures.get(user)
            if erasure is not None and record.offset < erasure.watermark:
                states.discard((user,))  # erased since it was cached: read what is left
                missing.append(user)
            else:
                stored[user] = record
        if missing:
            stored.update(features.get_many(missing))
        writes: list[FeatureRecord] = []
        ingested: list[float] = []
        for user, items in by_user.items():
            if not consents_to_personalization(profiles.get(user)):
                counts["no_consent"] += len(items)
                states.discard((user,))
                continue
            before, mark = counts.copy(), len(ingested)
            try:
                record = self._apply_user(
                    user,
                    items,
                    stored.get(user),
                    erasures.get(user),
                    counts,
                    ingested,
                    profiles.get(user),
                )
            except BackendError:
                raise
            except Exception as exc:  # noqa: BLE001 - an event the state refuses, for good
                logger.warning("%s: applying one by one after %r", self.name, exc)
                counts.update(before)
                del ingested[mark:]
                record = self._apply_each(
                    user, items, erasures.get(user), counts, ingested, profiles.get(user)
                )
            if record is not None:
                writes.append(record)
        return writes, ingested

    def _apply_user(
        self,
        user: str,
        items: list[Item],
        stored: FeatureRecord | None,
        erasure: Erasure | None,
        counts: dict[str, int],
        ingested: list[float],
        profile: dict[str, Any] | None = None,
        state: State | None = None,
        added: dict[str, float] | None = None,
    ) -> FeatureRecord | None:
        """Apply ``items`` to ``state`` (by default ``stored``'s, updated in place, or a new
        one); the record to write, or None when nothing changed. The dedupe ids the applied
        events add go into ``added`` (by default a new dict when the store keeps ``stored``'s
        ids apart; None: the store is given them all)."""
        params = self._params
        if state is None:
            state = stored.state if stored is not None else new_state()
            added = _added_base(stored)
        held = len(state.get(DEDUPE_KEY) or ())
        changed = False
        for record, event, ts in items:
            if erasure is not None and erasure.drops(record.offset, ts):
                counts["erased"] += 1
                continue
            if (
                stored is not None
                and record.partition == stored.partition
                and (record.offset <= stored.offset)
            ):
                counts["duplicate"] += 1  # applied before a crash or a rebalance
                continue
            view = self._article_stats.view_before(user, state, profile, event, ts)
            outcome = apply_outcome(state, event, params, ts)
            counts[outcome] += 1
            if outcome == APPLIED:
                if view is not None:
                    self._article_stats.add(user, record.offset, event, view)
                at = event.get("ingested_at")
                if at is not None:
                    ingested.append(at)
                if added is not None:
                    added[event["event_id"]] = ts
            changed = changed or outcome not in (DUPLICATE, ANNOTATION)
        if not changed:
            return None
        return _written(user, state, items[-1][0], _change(state, held, added))

    def _apply_each(
        self,
        user: str,
        items: list[Item],
        erasure: Erasure | None,
        counts: dict[str, int],
        ingested: list[float],
        profile: dict[str, Any] | None,
    ) -> FeatureRecord | None:
        """Apply ``items`` one at a time from the state before the batch (the store's: a
        cached one is the same, and the failed pass changed it in place); each one that
        raises is set aside, its state, counts and article statistics as before it."""
        self._states.discard((user,))
        stats = self._article_stats
        stats.rollback(user)
        stored = self.stores.features.get(user)
        state = stored.state if stored is not None else new_state()
        added, held = _added_base(stored), len(state.get(DEDUPE_KEY) or ())
        changed = False
        for item in items:
            before, mark, stats_mark = counts.copy(), len(ingested), stats.mark(user)
            snapshot = orjson.loads(orjson.dumps(state))  # what the store would give back
            added_before = None if added is None else added.copy()
            try:
                one = self._apply_user(
                    user, [item], stored, erasure, counts, ingested, profile, state, added
                )
                changed = changed or one is not None
            except BackendError:
                raise
            except Exception as exc:  # noqa: BLE001 - this event is refused, for good
                state, added = snapshot, added_before
                counts.update(before)
                del ingested[mark:]
                stats.rollback(user, stats_mark)
                record, _, ts = item
                counts["malformed"] += 1
                logger.error(
                    "skipping a log record that cannot be applied partition=%s offset=%s: %r",
                    record.partition,
                    record.offset,
                    exc,
                )
                self._dead_letter(record, f"could not be applied: {exc!r}", ts)
        if not changed:
            return None
        return _written(user, state, items[-1][0], _change(state, held, added))

    # --- the loop -----------------------------------------------------------------------

    def _linger_after(self, handled: int, stop_event: threading.Event) -> None:
        if handled < self.settings.worker_batch:
            # A trickle of events: let the next batch fill a little. Each batch pays a fixed
            # cost (store reads and writes, commit), so a few milliseconds of freshness buy
            # much more throughput (like Kafka's fetch.max.wait.ms).
            stop_event.wait(self.settings.worker_linger_s)

    def _discard(self) -> None:
        self._article_stats.discard()

    def _erasures(self, users: Collection[str]) -> Mapping[str, Erasure]:
        return self.stores.features.erasures(users)

    def _on_join(self) -> None:
        # Others may have owned our partitions while we were out of the group.
        self._states.clear()

    def close(self) -> None:
        super().close()
        self._states.clear()

    # --- helpers ----------------------------------------------------------------------------

    def _count(self, counts: dict[str, int], ingested: list[float], written_at: float) -> None:
        self._add_counts(counts)
        metrics = self.metrics
        if metrics is None:
            return
        if counts[APPLIED]:
            metrics.events_applied.inc(counts[APPLIED])
        for reason in SKIP_REASONS:
            if counts[reason]:
                metrics.events_skipped.labels(reason=reason).inc(counts[reason])
        observe = metrics.freshness.observe
        for at in ingested:
            observe(max(0.0, written_at - at))


def _written(user: str, state: State, last: LogRecord, dedupe: DedupeDelta | None) -> FeatureRecord:
    """The feature record to write for ``user``, the batch applied up to ``last``."""
    newest = state["newest"]
    return FeatureRecord(
        user, state, last.partition, last.offset, newest if newest is not None else 0.0,
        time.time(), STATE_VERSION, dedupe,
    )  # fmt: skip


def _added_base(stored: FeatureRecord | None) -> dict[str, float] | None:
    """Where a batch collects the dedupe ids it adds: a new dict when the store keeps
    ``stored``'s ids apart; None (write them all) for a new user or an older record."""
    return {} if stored is not None and stored.dedupe is not None else None


def _change(state: State, held: int, added: dict[str, float] | None) -> DedupeDelta | None:
    return None if added is None else dedupe_change(state, held, added)


def _untraced(events: Iterable[dict[str, Any]], count: int) -> contextlib.nullcontext[None]:
    return contextlib.nullcontext()
