from __future__ import annotations

import pytest
from pydantic import ValidationError

from tailorbot.kb import Article, Audience, KnowledgeBase, ResponseTemplate, Variants


def _article(id: str, intents: list[str], **extra) -> Article:
    return Article(id=id, title=f"Title {id}", body="Body.", intents=intents, **extra)


def _variants(text: str = "Hi {name}") -> Variants:
    return Variants(concise=text, step_by_step=text, empathetic=text)


def test_audience_matching() -> None:
    everyone = Audience()
    gold_en = Audience(tiers=["gold"], languages=["en"])
    assert everyone.matches("vip", "pt")
    assert gold_en.matches("gold", "en")
    assert gold_en.matches(None, None)
    assert not gold_en.matches("standard", "en")
    assert not gold_en.matches("gold", "es")


def test_lookups() -> None:
    kb = KnowledgeBase(
        [
            _article("a1", ["card_arrival"]),
            _article("a2", ["card_arrival", "card_linking"], audience=Audience(tiers=["vip"])),
        ],
        [
            ResponseTemplate(id="t1", intents=["card_arrival"], variants=_variants("A {name}")),
            ResponseTemplate(id="t0", default=True, variants=_variants("D {name}")),
        ],
    )
    assert kb.article("a2").title == "Title a2"
    assert kb.article("nope") is None
    assert kb.template("t0").default
    assert [a.id for a in kb.articles_for("card_arrival")] == ["a1", "a2"]
    assert [a.id for a in kb.articles_for("card_arrival", tier="standard")] == ["a1"]
    assert kb.articles_for("unknown") == []
    assert kb.template_for("card_arrival").id == "t1"
    assert kb.template_for("card_linking").id == "t0"
    assert kb.template_for("card_arrival").render("concise", {"name": "Ada"}) == "A Ada"
    assert kb.intents() == {"card_arrival", "card_linking"}
    assert kb.templated_intents() == {"card_arrival"}
    assert kb.uncovered(["card_arrival", "age_limit", "out_of_scope"]) == ["age_limit"]
    assert "2 articles" in repr(kb)


def test_no_default_template() -> None:
    kb = KnowledgeBase([_article("a1", ["x"])])
    assert kb.template_for("x") is None


def test_unknown_variant() -> None:
    template = ResponseTemplate(id="t", intents=["x"], variants=_variants())
    with pytest.raises(ValueError, match="unknown variant 'chatty'"):
        template.render("chatty", {})


@pytest.mark.parametrize(
    "bad",
    [
        {"id": "has space", "title": "t", "body": "b", "intents": ["x"]},
        {"id": "a", "title": "", "body": "b", "intents": ["x"]},
        {"id": "a", "title": "t", "body": "b", "intents": []},
        {"id": "a", "title": "t", "body": "b", "intents": ["x"], "colour": "red"},
        {"id": "a", "title": "t", "body": "b", "intents": ["x"], "steps": [""]},
    ],
)
def test_article_validation(bad: dict) -> None:
    with pytest.raises(ValidationError):
        Article.model_validate(bad)


def test_variant_placeholders_are_validated() -> None:
    with pytest.raises(ValidationError, match="unknown placeholder"):
        Variants(concise="Hi {nme}", step_by_step="x", empathetic="x")
    with pytest.raises(ValidationError, match="at least one variant"):
        Variants.model_validate({})
    with pytest.raises(ValidationError, match="variant name"):
        Variants.model_validate({"two words": "x"})


def test_a_template_declares_any_number_of_variants_with_any_names() -> None:
    variants = Variants.model_validate({"short": "Hi.", "formal_de": "Guten Tag, {name}."})
    assert variants.names == ["short", "formal_de"]
    assert variants.text("formal_de") == "Guten Tag, {name}."
    with pytest.raises(ValueError, match="unknown variant 'concise'"):
        variants.text("concise")
