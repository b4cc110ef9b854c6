"""The hot swap's watcher: a newly current version is loaded and warmed up off the request
path, then handed over; an unchanged pointer loads nothing."""

from __future__ import annotations

from pathlib import Path

from tailorbot.models import registry
from tailorbot.services.decisions.model_swap import WARM_UP_TEXT, CurrentModelWatcher


class LazyModel:
    """A model whose first prediction is slow (tables loaded lazily), like the hybrid one."""

    def __init__(self) -> None:
        self.predicted: list[str] = []

    def predict_one(self, text: str) -> str:
        self.predicted.append(text)
        return "intent"


def test_a_new_current_version_is_warmed_up_before_it_is_handed_over(tmp_path: Path) -> None:
    first = registry.save(tmp_path, LazyModel(), {})
    handed: list[list[str]] = []
    watcher = CurrentModelWatcher(
        tmp_path, first.version, lambda saved: handed.append(list(saved.model.predicted))
    )
    watcher.refresh()
    assert handed == []  # nothing new
    second = registry.save(tmp_path, LazyModel(), {})
    registry.set_current(tmp_path, second.version, action="promote", reason="test")
    watcher.refresh()
    assert handed == [[WARM_UP_TEXT]]  # predicted once before any request could use it
    assert len(WARM_UP_TEXT) >= 8  # long enough for the language detector to load
    assert watcher.version == second.version
