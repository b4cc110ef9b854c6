from __future__ import annotations

from pathlib import Path

import pytest

from tailorbot.errors import InvalidInput, NotFound
from tailorbot.kb import default_kb_dir, read_labels
from tailorbot.kb.repository import KBRepository
from tests.kb.support import ARTICLE, EXAMPLE, example_copy


@pytest.fixture
def seed(tmp_path: Path) -> Path:
    return example_copy(tmp_path / "seed")


def test_changes_are_versioned_and_seen_by_every_process(tmp_path: Path, seed: Path) -> None:
    one = KBRepository(tmp_path / "live", seed)
    other = KBRepository(tmp_path / "live", seed)  # a second server process
    version, kb = one.load()
    assert version == 1 and kb.manifest.brand.name == "Tailor Telecom"
    assert one.put("article", "tt-esim", ARTICLE) == 2
    assert other.version() == 2
    _, kb = other.load()
    assert kb.article("tt-esim").title == "eSIM"
    assert kb.manifest.brand.name == "Tailor Telecom"  # the brand survives a rewrite
    assert other.get("article", "tt-esim") == {"id": "tt-esim", **ARTICLE}
    # replace, then delete
    assert one.put("article", "tt-esim", {**ARTICLE, "title": "eSIM setup"}) == 3
    assert other.get("article", "tt-esim")["title"] == "eSIM setup"
    assert other.delete("article", "tt-esim") == 4
    with pytest.raises(NotFound):
        one.get("article", "tt-esim")
    with pytest.raises(NotFound):
        one.delete("article", "tt-esim")


def test_templates_too(tmp_path: Path, seed: Path) -> None:
    repo = KBRepository(tmp_path / "live", seed)
    template = {
        "intents": ["network_outage"],
        "article": "tt-network-status",
        "variants": {
            "brief": "{brand}: see {article_title}",
            "guided": "1. Wait",
            "warm": "Sorry {name}",
        },
    }
    repo.put("template", "tt-outage", template)
    _, kb = repo.load()
    assert kb.template_for("network_outage").id == "tt-outage"


def test_an_invalid_change_publishes_nothing(tmp_path: Path, seed: Path) -> None:
    repo = KBRepository(tmp_path / "live", seed)
    version, _ = repo.load()
    with pytest.raises(InvalidInput) as caught:
        repo.put("article", "tt-esim", {"title": "", "body": "B", "intents": []})
    fields = [p.field for p in caught.value.problems]
    assert fields == ["articles[tt-esim].title", "articles[tt-esim].intents"]
    with pytest.raises(InvalidInput, match="differs"):
        repo.put("article", "tt-esim", {**ARTICLE, "id": "other"})
    with pytest.raises(InvalidInput) as caught:  # a template still names it
        repo.delete("article", "tt-roaming")
    assert "unknown article 'tt-roaming'" in caught.value.problems[0].reason
    bad_placeholder = {
        "variants": {"brief": "{plan_name}", "guided": "x", "warm": "x"},
        "intents": ["port_in_number"],
    }
    with pytest.raises(InvalidInput, match="1 error"):
        repo.put("template", "tt-port", bad_placeholder)
    with pytest.raises(NotFound):
        repo.put("faq", "x", {})
    assert repo.version() == version


def test_labels_are_enforced_when_given(tmp_path: Path, seed: Path) -> None:
    labels = read_labels(EXAMPLE.parent / "intents.txt")
    repo = KBRepository(tmp_path / "live", seed, labels=labels)
    repo.load()
    with pytest.raises(InvalidInput) as caught:
        repo.put("article", "tt-x", {**ARTICLE, "intents": ["sim_activaton"]})
    assert "did you mean 'sim_activation'" in caught.value.problems[0].reason


def test_a_new_seed_is_copied_in_as_a_new_version(tmp_path: Path, seed: Path) -> None:
    repo = KBRepository(tmp_path / "live", seed)
    repo.put("article", "tt-esim", ARTICLE)
    assert repo.version() == 2
    assert KBRepository(tmp_path / "live", seed).seed() is None  # same seed: kept
    repo_bank = KBRepository(tmp_path / "live", default_kb_dir())  # the deploy changed kb_dir
    assert repo_bank.load()[0] == 2  # a reader never re-seeds: only serve's seed() does
    assert repo_bank.seed() == 3
    version, kb = repo_bank.load()
    assert version == 3 and kb.manifest.brand.name == "Tailor Bank"
    assert kb.article("tt-esim") is None
    assert len(list((tmp_path / "live").glob("v*"))) == 3


def test_a_record_nested_too_deeply_is_refused_before_it_is_written(
    tmp_path: Path, seed: Path
) -> None:
    repo = KBRepository(tmp_path / "live", seed)
    version, _ = repo.load()
    deep: list = [1]
    for _ in range(900):  # past what the YAML writer can recurse into
        deep = [deep]
    for kind, section, record in (
        ("article", "articles", {**ARTICLE, "x": deep}),
        ("template", "templates", {"intents": ["port_in_number"], "variants": {"a": deep}}),
    ):
        with pytest.raises(InvalidInput) as caught:
            repo.put(kind, "tt-deep", record)
        (problem,) = caught.value.problems
        assert problem.field == f"{section}[tt-deep].{next(reversed(record))}"
        assert "nested more than" in problem.reason
    assert repo.version() == version
    assert not list((tmp_path / "live").glob(".staging-*"))
