"""Hot swap: pick up a new current intent model version without a restart.

:class:`CurrentModelWatcher.refresh` runs on the decision service's background refresh thread
(never on a request): it reads the registry's current pointer (one small file) and, when it
names another version, loads that version, makes one prediction with it (the lazy tables
load there, not in a request) and hands it to ``on_new``.
:class:`~tailorbot.services.decisions.live_models.LiveModels` then replaces its
:class:`~tailorbot.services.decisions.live_models.DecisionModels` in one attribute
assignment, so a request uses either the old set or the new one, whole; requests in flight
finish with the set they started with. A version that fails to load is logged and retried at
the next tick; the old model keeps serving.

>>> import tempfile
>>> from tailorbot.models import registry
>>> root = tempfile.mkdtemp()
>>> first = registry.save(root, "model-a", {}, kind="intent")
>>> seen = []
>>> watcher = CurrentModelWatcher(root, first.version, lambda saved: seen.append(saved.model))
>>> watcher.refresh(); seen
[]
>>> _ = registry.save(root, "model-b", {}, kind="intent")
>>> watcher.refresh(); seen
['model-b']
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from tailorbot.metrics import Metrics
from tailorbot.models import registry
from tailorbot.models.pipeline.retrain import STATE_FILE, last_outcome

# Long enough for the language detector to run (it skips messages under 8 characters).
WARM_UP_TEXT = "where is my card, please?"


def warm_up(model: object) -> None:
    """One prediction: it loads the embedding table, the tokenizer and the language model
    (about a second), which a model loads lazily: pay it here, not in the first request."""
    predict_one = getattr(model, "predict_one", None)
    if predict_one is not None:
        predict_one(WARM_UP_TEXT)


class CurrentModelWatcher:
    def __init__(
        self,
        data_dir: str | Path,
        version: str | None,
        on_new: Callable[[registry.SavedModel], None],
        kind: str = "intent",
    ) -> None:
        self.data_dir = data_dir
        self.version = version
        self.on_new = on_new
        self.kind = kind

    def refresh(self) -> None:
        current = registry.current_version(self.data_dir, self.kind)
        if current is None or current == self.version:
            return
        saved = registry.load(self.data_dir, current, self.kind)
        warm_up(saved.model)
        self.on_new(saved)
        self.version = current


class RetrainOutcomeReader:
    """Shows the last retraining outcome (written by whichever process retrained) in this
    process's metrics; reads the small state file only when it changed."""

    def __init__(self, data_dir: str | Path, metrics: Metrics, kind: str = "intent") -> None:
        self.data_dir = data_dir
        self.metrics = metrics
        self.kind = kind
        self._seen: float | None = None

    def refresh(self) -> None:
        path = registry.kind_dir(self.data_dir, self.kind) / STATE_FILE
        try:
            changed = path.stat().st_mtime
        except FileNotFoundError:
            return
        if changed == self._seen:
            return
        outcome = last_outcome(self.data_dir, self.kind)
        self._seen = changed
        if outcome is None:
            return
        self.metrics.retrain_last.clear()
        self.metrics.retrain_last.labels(outcome["outcome"], outcome.get("version") or "").set(1)
        self.metrics.retrain_last_time.set(datetime.fromisoformat(outcome["at"]).timestamp())
