"""Shared article statistics, fed by the stream worker as article events are applied.

The recommender's collaborative signal (what resolved, or helped, customers of the same tier
and segment with the same intent; which articles help together) lives in the store's additive
counters. For each *newly applied* ``resolution``, ``article_feedback`` and ``article_viewed``
event the worker asks :func:`tailorbot.models.recommend.collaborative.deltas_for_event` what to
add (given the user's features at that point) and adds the batch's sum after writing the
feature records. A crash between the two loses that batch's statistics rather than counting
them twice (the events are then duplicates for the feature state): at most once, which is the
right side to err on for aggregate rates.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from tailorbot.models.recommend.collaborative import deltas_for_event
from tailorbot.store.base import FeatureRecord, OnlineStore
from tailorbot.stream.features import feature_view

ARTICLE_EVENTS = frozenset({"resolution", "article_feedback", "article_viewed"})


class ArticleStatsCollector:
    def __init__(self) -> None:
        self._pending: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))

    def observe(
        self,
        user_id: str,
        state: dict[str, Any],
        profile: dict[str, Any] | None,
        event: dict[str, Any],
        ts: float,
    ) -> None:
        if event.get("type") not in ARTICLE_EVENTS:
            return
        record = FeatureRecord(user_id, state, partition=0, offset=0, event_time=ts, updated_at=ts)
        view = feature_view(record, profile, ts)
        for namespace, deltas in deltas_for_event(event, view).items():
            bucket = self._pending[namespace]
            for key, value in deltas.items():
                bucket[key] += value

    def flush(self, store: OnlineStore) -> None:
        pending, self._pending = self._pending, defaultdict(lambda: defaultdict(float))
        for namespace, deltas in pending.items():
            if deltas:
                store.increment(namespace, dict(deltas))

    def discard(self) -> None:
        """Drop what a failed batch collected (it will be re-read)."""
        self._pending = defaultdict(lambda: defaultdict(float))
