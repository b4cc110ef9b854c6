"""Train the collaborative-filtering model from the event log and keep it in the registry.

``tailorbot train-recs`` trains through the learning pipeline
(:mod:`tailorbot.models.pipeline.cf`: time split, selection on validation, one test, a
candidate version, the promotion gate); the decision service picks the *current* version up
without a restart (:class:`CFLoader`, polled by its background refresh). Without a CURRENT
pointer (registries from before promotion) the newest version is current.

>>> import tempfile
>>> model = ItemKNN(min_common=1).fit([("u1", "a", 1.0), ("u1", "b", 1.0)])
>>> root = tempfile.mkdtemp()
>>> _ = save_cf(root, model, {"events": 2})
>>> loader = CFLoader(root)
>>> loader.poll().neighbours_of("a") == model.neighbours_of("a"), loader.poll() is None
(True, True)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from tailorbot.events.codec import event_epoch
from tailorbot.log.base import EventLog
from tailorbot.models import registry
from tailorbot.models.pipeline.source import applicable_records
from tailorbot.models.recommend.item_knn import ItemKNN, interactions_from_events
from tailorbot.store.base import FeatureStore

CF_KIND = "item_knn"

TimedEvent = tuple[float, int, int, dict[str, Any]]


def events_in_time_order(log: EventLog, *, features: FeatureStore | None) -> list[TimedEvent]:
    """Every event of the log as ``(time, partition, offset, event)``, in event-time order
    across partitions (ties by partition and offset); records the stream worker would not
    apply (dead letters) and, with ``features``, those its erasures drop are left out, as in
    every training source."""
    records = applicable_records(log, features=features)
    items = [(ts, r.partition, r.offset, event) for ts, r, event in records]
    items.sort(key=lambda item: item[:3])
    return items


def train_item_knn(events: Iterable[Mapping[str, Any]], **params: Any) -> ItemKNN:
    return ItemKNN(**params).fit(interactions_from_events(events))


def train_from_log(
    log: EventLog, until: float | None = None, *, features: FeatureStore | None, **params: Any
) -> tuple[ItemKNN, dict[str, Any]]:
    """The model fitted on the events with time at most ``until`` (all when None), and its
    metadata (what it was trained on)."""
    timed = events_in_time_order(log, features=features)
    events = [e for ts, *_, e in timed if until is None or ts <= until]
    model = train_item_knn(events, **params)
    times = [event_epoch(e) for e in events]
    metadata = {
        "events": len(events),
        "trained_until": max(times) if times else None,
        "params": {
            "neighbours": model.neighbours,
            "shrinkage": model.shrinkage,
            "min_common": model.min_common,
        },
        **model.summary(),
    }
    return model, metadata


def save_cf(data_dir: str | Path, model: ItemKNN, metadata: Mapping[str, Any]) -> Any:
    return registry.save(data_dir, model, metadata, kind=CF_KIND)


class CFLoader:
    """Watches the registry for a newly current collaborative-filtering model (off the request
    path).

    :meth:`poll` reads the current version (one small file) and loads it when it is not the
    one loaded last; it returns the new model, or None when nothing changed or the version
    cannot be loaded (the last good model stays in use).
    """

    def __init__(self, data_dir: str | Path) -> None:
        self.data_dir = data_dir
        self._version: str | None = None
        self.metadata: dict[str, Any] = {}

    @property
    def version(self) -> str | None:
        return self._version

    def poll(self) -> ItemKNN | None:
        current = registry.current_version(self.data_dir, CF_KIND)
        if current is None or current == self._version:
            return None
        try:
            saved = registry.load(self.data_dir, current, CF_KIND)
        except (registry.ModelNotFoundError, registry.ModelLoadError):
            return None
        if not isinstance(saved.model, ItemKNN):
            return None
        self._version, self.metadata = saved.version, saved.metadata
        return saved.model
