"""``tailorbot label import`` reads the live KB of the data directory as the servers serve it;
run with another (or the default) ``kb_dir`` it never publishes that folder over it."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from tailorbot.cli import app
from tailorbot.kb.repository import KBRepository
from tests.services.decisions.conftest import save_model

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "telecom" / "kb"
HEADER = "user_id,session_id,message_event_id,intent\n"


def _import(csv_path: Path, data_dir: Path) -> object:
    args = ["label", "import", str(csv_path), "--data-dir", str(data_dir)]
    return CliRunner().invoke(app, args)


@pytest.fixture(autouse=True)
def default_kb_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    """The command runs with the default settings: the bundled KB as ``kb_dir``."""
    monkeypatch.delenv("TAILORBOT_KB_DIR", raising=False)


def test_label_import_checks_against_the_live_kb_and_publishes_nothing(tmp_path: Path) -> None:
    save_model(tmp_path)
    live = KBRepository(tmp_path / "kb", EXAMPLE)  # a server's live KB: the telecom one
    version, _ = live.load()
    bad = tmp_path / "bad.csv"
    bad.write_text(HEADER + "u1,s1,m1,no_such_intent\n")
    refused = _import(bad, tmp_path)
    assert refused.exit_code == 1, refused.output
    assert live.version() == version
    assert live.load()[1].manifest.brand.name == "Tailor Telecom"

    good = tmp_path / "good.csv"
    good.write_text(HEADER + "u1,s1,m1,sim_activation\n")  # an intent of the live KB only
    imported = _import(good, tmp_path)
    assert imported.exit_code == 0, imported.output
    assert live.version() == version


def test_label_import_before_any_server_ran_creates_no_live_kb(tmp_path: Path) -> None:
    save_model(tmp_path)
    good = tmp_path / "good.csv"
    good.write_text(HEADER + "u1,s1,m1,card_arrival\n")
    imported = _import(good, tmp_path)
    assert imported.exit_code == 0, imported.output
    assert KBRepository(tmp_path / "kb", EXAMPLE).version() == 0
