"""Shared article statistics, fed by the stream worker as article events are applied.

The recommender's collaborative signal (what resolved, or helped, customers of the same tier
and segment with the same intent; which articles help together) lives in the store's additive
counters. For each *newly applied* ``resolution``, ``article_feedback`` and ``article_viewed``
event the worker asks :func:`tailorbot.models.recommend.collaborative.deltas_for_event` what to
add, given the user's features just *before* the event, and hands them, per user and event
offset, to :meth:`FeatureStore.put_many <tailorbot.store.base.FeatureStore.put_many>`: they are
added in the same atomic write as the user's record, and only for events after the offset the
store held. A crash before the write adds nothing (the batch is re-read and counted then); two
workers owning a partition during a hand-over count each event once; a stale worker's record,
skipped by the store, adds nothing. Exactly once with respect to the log.

The same pass counts the segment-level memory of the response variants
(:func:`tailorbot.features.memory.segment_deltas`: per segment and variant, the outcomes of
feedback events naming a variant), the cold-start prior of each customer's own memory; those
counters ride the same atomic write.
"""

from __future__ import annotations

from typing import Any

from tailorbot.features.memory import OUTCOME_EVENT_TYPES, segment_deltas
from tailorbot.features.view import counter_view
from tailorbot.models.recommend.collaborative import (
    ARTICLE_EVENT_TYPES,
    Deltas,
    add_deltas,
    deltas_for_event,
)
from tailorbot.store.base import EventIncrement, FeatureRecord


class ArticleStatsCollector:
    def __init__(self) -> None:
        self._pending: dict[str, list[EventIncrement]] = {}

    @staticmethod
    def view_before(
        user_id: str,
        state: dict[str, Any],
        profile: dict[str, Any] | None,
        event: dict[str, Any],
        ts: float,
    ) -> dict[str, Any] | None:
        """The part of the user's view the counters read (``counter_view``), before
        ``event`` is applied; None when the event is not about articles (most events: no
        view is built for them)."""
        kind = event.get("type")
        if kind not in ARTICLE_EVENT_TYPES and kind not in OUTCOME_EVENT_TYPES:
            return None
        record = FeatureRecord(user_id, state, partition=0, offset=0, event_time=ts, updated_at=ts)
        return counter_view(record, profile, ts)

    def add(self, user_id: str, offset: int, event: dict[str, Any], view: dict[str, Any]) -> None:
        """Count an event that was applied (call only then), found at ``offset`` of the log."""
        deltas: Deltas = {}
        add_deltas(deltas, deltas_for_event(event, view))
        add_deltas(deltas, segment_deltas(event, view))
        if any(deltas.values()):
            self._pending.setdefault(user_id, []).append((offset, deltas))

    def take(self) -> dict[str, list[EventIncrement]]:
        """What the batch collected, per user (for ``put_many``); empties the collector."""
        pending, self._pending = self._pending, {}
        return pending

    def mark(self, user_id: str) -> int:
        """Where the user's collected increments end now (for :meth:`rollback`)."""
        return len(self._pending.get(user_id, ()))

    def rollback(self, user_id: str, mark: int = 0) -> None:
        """Forget the user's increments collected after ``mark`` (all by default): their
        events are applied again, or were not applied after all."""
        pending = self._pending.get(user_id)
        if pending is not None:
            del pending[mark:]
            if not pending:
                del self._pending[user_id]

    def discard(self) -> None:
        """Drop what a failed batch collected (it will be re-read)."""
        self._pending = {}
