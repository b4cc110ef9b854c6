from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tailorbot.models import registry

T0 = datetime(2026, 1, 1, 10, 0, tzinfo=UTC)


def test_save_writes_model_and_metadata(tmp_path: Path) -> None:
    saved = registry.save(tmp_path, {"w": [1.0]}, {"metrics": {"accuracy": 0.9}}, now=T0)
    assert saved.path == tmp_path / "models" / "intent" / "20260101T100000000000Z"
    meta = json.loads((saved.path / registry.METADATA_FILE).read_text())
    assert meta == {
        "metrics": {"accuracy": 0.9},
        "kind": "intent",
        "version": "20260101T100000000000Z",
        "created_at": "2026-01-01T10:00:00+00:00",
    }
    assert (saved.path / registry.MODEL_FILE).is_file()
    assert [p.name for p in saved.path.parent.iterdir()] == [saved.version]  # no staging left


def test_latest_picks_the_newest(tmp_path: Path) -> None:
    for i, minutes in enumerate([0, 5, 2]):  # saved out of clock order on purpose
        registry.save(tmp_path, {"n": i}, {}, now=T0 + timedelta(minutes=minutes))
    versions = registry.versions(tmp_path)
    assert len(versions) == 3
    assert versions == sorted(versions)
    newest = registry.latest(tmp_path)
    # the third save had an older clock than the second; it still sorts last
    assert newest.model == {"n": 2}
    assert newest.version == versions[-1]


def test_same_instant_gets_a_suffix(tmp_path: Path) -> None:
    a = registry.save(tmp_path, "first", {}, now=T0)
    b = registry.save(tmp_path, "second", {}, now=T0)
    assert b.version == a.version + "-1"
    assert registry.latest(tmp_path).model == "second"


def test_kinds_are_separate(tmp_path: Path) -> None:
    registry.save(tmp_path, "intent model", {}, kind="intent", now=T0)
    registry.save(tmp_path, "bandit model", {}, kind="bandit", now=T0 + timedelta(hours=1))
    assert registry.latest(tmp_path, kind="intent").model == "intent model"
    assert registry.latest(tmp_path, kind="bandit").model == "bandit model"


def test_incomplete_versions_are_ignored(tmp_path: Path) -> None:
    registry.save(tmp_path, "good", {}, now=T0)
    root = registry.kind_dir(tmp_path, "intent")
    (root / "20300101T000000000000Z").mkdir()  # no metadata: a crashed writer
    (root / ".staging-x").mkdir()
    (root / "notes").mkdir()
    assert registry.latest(tmp_path).model == "good"


def test_no_model(tmp_path: Path) -> None:
    with pytest.raises(registry.ModelNotFoundError, match="tailorbot train"):
        registry.latest(tmp_path)
    with pytest.raises(registry.ModelNotFoundError):
        registry.load(tmp_path, "../../etc")
    assert registry.versions(tmp_path) == []


def test_corrupt_model_file(tmp_path: Path) -> None:
    saved = registry.save(tmp_path, "fine", {}, now=T0)
    (saved.path / registry.MODEL_FILE).write_bytes(b"not a pickle")
    with pytest.raises(registry.ModelLoadError, match="cannot load intent model"):
        registry.latest(tmp_path)


def test_bad_kind(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="model kind"):
        registry.save(tmp_path, "x", {}, kind="../up")
