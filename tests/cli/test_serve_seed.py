"""``tailorbot serve`` is where a changed ``kb_dir`` reaches the live KB: its start-up check
copies the folder in as a new version (replacing API edits), and refuses an invalid folder
in one line, publishing nothing."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer

from tailorbot.cli.serve import _preflight
from tailorbot.config import Settings
from tailorbot.kb.repository import KBRepository
from tests.kb.support import ARTICLE, example_copy

MORE = "articles:\n  - {id: tt-more, title: More, body: B., intents: [sim_activation]}\n"


@pytest.fixture
def kb_dir(tmp_path: Path) -> Path:
    return example_copy(tmp_path / "kb")


def _settings(tmp_path: Path, kb_dir: Path) -> Settings:
    return Settings.load(data_dir=tmp_path / "data", kb_dir=kb_dir, run_worker_in_server=False)


def test_serve_copies_a_changed_kb_dir_in_at_start(tmp_path: Path, kb_dir: Path) -> None:
    settings = _settings(tmp_path, kb_dir)
    _preflight(settings, kb=True)
    live = KBRepository(settings.data_dir / "kb", kb_dir)
    assert live.version() == 1
    live.put("article", "tt-esim", ARTICLE)
    _preflight(settings, kb=True)  # a restart with the same kb_dir keeps the API edit
    assert live.version() == 2 and live.load()[1].article("tt-esim") is not None
    (kb_dir / "more.yaml").write_text(MORE)
    _preflight(settings, kb=True)  # a deploy shipping a new KB: copied in, the edit replaced
    version, kb = live.load()
    assert version == 3 and kb.article("tt-more") is not None and kb.article("tt-esim") is None


def test_serve_refuses_an_invalid_kb_dir_and_publishes_nothing(
    tmp_path: Path, kb_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = _settings(tmp_path, kb_dir)
    _preflight(settings, kb=True)
    (kb_dir / "broken.yaml").write_text("articles:\n  - {id: x}\n")
    with pytest.raises(typer.Exit):
        _preflight(settings, kb=True)
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and "broken.yaml" in error, error
    assert KBRepository(settings.data_dir / "kb", kb_dir).version() == 1
