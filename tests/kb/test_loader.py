from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from tailorbot.kb import (
    VARIANTS,
    KBError,
    check_kb,
    default_kb_dir,
    default_labels_file,
    load_kb,
    placeholders,
    read_labels,
)
from tailorbot.models.intent import bundled_dataset


@pytest.fixture(scope="module")
def labels() -> list[str]:
    return read_labels(default_labels_file())


def test_demo_kb_is_valid_and_covers_every_banking77_intent(labels: list[str]) -> None:
    report = check_kb(default_kb_dir(), labels)
    assert report.errors == []
    assert report.warnings == []
    kb = report.kb
    assert kb is not None
    assert len(labels) == 77
    assert kb.intents() == set(labels)
    assert len(report.files) >= 5


def test_demo_kb_articles_are_substantial(labels: list[str]) -> None:
    kb = load_kb(default_kb_dir(), labels)
    for article in kb.articles:
        assert len(article.body) >= 50 or len(article.steps) >= 2, article.id
    per_intent = Counter(intent for article in kb.articles for intent in article.intents)
    assert sum(1 for n in per_intent.values() if n >= 2) >= 15


def test_demo_kb_templates_cover_the_20_most_frequent_intents(labels: list[str]) -> None:
    kb = load_kb(default_kb_dir(), labels)
    frequent = [
        name for name, _ in Counter(bundled_dataset("banking77", "train").labels).most_common(20)
    ]
    assert set(frequent) <= kb.templated_intents()
    assert kb.default_template is not None
    for template in kb.templates:
        texts = [template.variants.text(v) for v in VARIANTS]
        assert len(set(texts)) == 3, template.id
        for text in texts:
            placeholders(text)  # raises on a malformed or unknown placeholder


def test_demo_kb_renders_every_variant(labels: list[str]) -> None:
    kb = load_kb(default_kb_dir(), labels)
    for intent in labels:
        template = kb.template_for(intent)
        assert template is not None
        title = kb.articles_for(intent)[0].title
        for variant in VARIANTS:
            text = template.render(variant, {"name": "Ada", "tier": "gold", "article_title": title})
            assert "Ada" in text and "{" not in text and "}" not in text


def test_load_kb_raises_with_every_issue(tmp_path: Path) -> None:
    (tmp_path / "kb.yaml").write_text("articles:\n  - {id: a}\n  - {id: b}\n")
    with pytest.raises(KBError) as info:
        load_kb(tmp_path)
    assert len(info.value.issues) == 6
    assert "kb.yaml: articles[a].title: Field required" in str(info.value)


def test_read_labels(tmp_path: Path) -> None:
    as_json = tmp_path / "labels.json"
    as_json.write_text(json.dumps(["card_arrival", "reverted_card_payment?"]))
    assert read_labels(as_json) == ["card_arrival", "reverted_card_payment"]
    as_text = tmp_path / "labels.txt"
    as_text.write_text("# intents\ncard_arrival\n\nRefund_not_showing_up\n")
    assert read_labels(as_text) == ["card_arrival", "refund_not_showing_up"]
    bad = tmp_path / "bad.json"
    bad.write_text('{"a": 1}')
    with pytest.raises(ValueError, match="expected a JSON list"):
        read_labels(bad)
    with pytest.raises(ValueError, match="cannot read labels"):
        read_labels(tmp_path / "missing.txt")
