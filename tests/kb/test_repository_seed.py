"""When the live KB is (re)seeded from ``kb_dir``: on the first load of an empty repository,
and by an explicit :meth:`KBRepository.seed` (``tailorbot serve`` at start-up), never by a
reader or a change."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from tailorbot.kb import default_kb_dir
from tailorbot.kb.loader import KBError
from tailorbot.kb.repository import KBRepository
from tests.kb.support import ARTICLE, example_copy


@pytest.fixture
def seed(tmp_path: Path) -> Path:
    return example_copy(tmp_path / "seed")


def test_the_first_load_seeds_an_empty_repository(tmp_path: Path, seed: Path) -> None:
    version, kb = KBRepository(tmp_path / "live", seed).load()
    assert version == 1 and kb.manifest.brand.name == "Tailor Telecom"


def test_a_reader_with_another_kb_dir_does_not_replace_the_live_kb(
    tmp_path: Path, seed: Path
) -> None:
    """``tailorbot label import`` with default settings (the bundled KB) against a server's
    data directory: it reads CURRENT, it publishes nothing."""
    server = KBRepository(tmp_path / "live", seed)
    server.put("article", "tt-esim", ARTICLE)
    version, kb = KBRepository(tmp_path / "live", default_kb_dir()).load()
    assert version == 2 and kb.manifest.brand.name == "Tailor Telecom"
    assert kb.article("tt-esim") is not None
    assert server.version() == 2


def test_a_changed_kb_dir_does_not_drop_api_edits_of_a_running_server(
    tmp_path: Path, seed: Path
) -> None:
    repo = KBRepository(tmp_path / "live", seed)
    repo.put("article", "tt-esim", ARTICLE)
    (seed / "more.yaml").write_text(
        "articles:\n  - {id: tt-more, title: More, body: B., intents: [sim_activation]}\n"
    )
    version, kb = repo.load()
    assert version == 2 and kb.article("tt-esim") is not None and kb.article("tt-more") is None
    assert repo.put("article", "tt-esim", {**ARTICLE, "title": "eSIM setup"}) == 3


def test_an_invalid_file_in_kb_dir_does_not_break_reads_or_changes(
    tmp_path: Path, seed: Path
) -> None:
    repo = KBRepository(tmp_path / "live", seed)
    repo.load()
    (seed / "broken.yaml").write_text("articles:\n  - {id: x}\n")
    assert repo.load()[0] == 1
    assert repo.get("article", "tt-roaming")["id"] == "tt-roaming"
    assert repo.put("article", "tt-esim", ARTICLE) == 2


def test_seed_copies_a_changed_kb_dir_in_and_replaces_api_edits(
    tmp_path: Path, seed: Path, caplog: pytest.LogCaptureFixture
) -> None:
    repo = KBRepository(tmp_path / "live", seed)
    repo.put("article", "tt-esim", ARTICLE)
    assert repo.seed() is None  # kb_dir unchanged since it was copied in: nothing to do
    assert repo.version() == 2
    bank = KBRepository(tmp_path / "live", default_kb_dir())  # the deploy changed kb_dir
    with caplog.at_level(logging.WARNING, logger="tailorbot.kb.repository"):
        assert bank.seed() == 3
    assert "replaces the changes made through the API (versions 2 to 2" in caplog.text
    version, kb = bank.load()
    assert version == 3 and kb.manifest.brand.name == "Tailor Bank"
    assert kb.article("tt-esim") is None
    assert bank.seed() is None


def test_seed_refuses_an_invalid_kb_dir_and_publishes_nothing(tmp_path: Path, seed: Path) -> None:
    repo = KBRepository(tmp_path / "live", seed)
    repo.load()
    (seed / "broken.yaml").write_text("articles:\n  - {id: x}\n")
    with pytest.raises(KBError):
        repo.seed()
    assert repo.version() == 1
    assert not list((tmp_path / "live").glob(".staging-*"))


def test_seed_runs_the_repository_check_too(tmp_path: Path, seed: Path) -> None:
    """The check the deployment adds (the fixed control variant) applies to a seed as well."""
    repo = KBRepository(
        tmp_path / "live", seed, check=lambda kb: [("control_variant", "not in the KB")]
    )
    with pytest.raises(KBError, match="control_variant: not in the KB"):
        repo.seed()
    assert repo.version() == 0


def test_seed_refuses_a_kb_without_a_default_template(tmp_path: Path) -> None:
    """``kb check`` reports it as an error: the live KB does not start from such a KB."""
    folder = tmp_path / "seed"
    folder.mkdir()
    (folder / "kb.yaml").write_text(
        "articles:\n  - {id: a1, title: T, body: B., intents: [card_arrival]}\n"
        "templates:\n  - {id: t1, intents: [card_arrival], variants: {a: Hi}}\n"
    )
    with pytest.raises(KBError, match="no default template"):
        KBRepository(tmp_path / "live", folder).seed()
