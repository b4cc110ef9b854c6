from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from tailorbot.kb import (
    Article,
    KBManifest,
    KnowledgeBase,
    ResponseTemplate,
    Variants,
    check_kb,
    default_kb_dir,
    load_kb,
)

MANIFEST = """
brand:
  name: Tailor Telecom
  support_hours: "Mon-Sat 8:00-20:00"
  handoff_text: "Connecting you to a Tailor Telecom agent."
  help_url: https://help.tailortelecom.example/a
placeholders:
  plan: {source: attributes.plan, default: "your plan"}
  city: {source: region}
articles:
  - id: kb-roaming
    title: Roaming abroad
    body: "**Roaming** is included in the EU. Outside it, buy a [travel pass](https://x.example/p)."
    intents: [roaming]
  - id: kb-bill
    title: Your bill
    body: Bills arrive on the 1st.
    intents: [bill]
    url: https://tailortelecom.example/bill
    snippet: When your bill arrives and how to read it.
templates:
  - id: t-default
    default: true
    variants:
      concise: "{brand}: your {plan} in {city}, see {article_title}."
      step_by_step: "1. We are open {support_hours}."
      empathetic: "Sorry {name}. {handoff_text}"
"""


def test_brand_and_custom_placeholders_fill_from_the_profile(tmp_path: Path) -> None:
    (tmp_path / "kb.yaml").write_text(MANIFEST)
    kb = load_kb(tmp_path)
    template = kb.template_for("roaming")
    profile = {"name": "Ada", "region": "Lisbon", "attributes": {"plan": "Unlimited 5G"}}
    context = {"name": "Ada", "article_title": "Roaming abroad"}
    assert kb.render(template, "concise", context, profile) == (
        "Tailor Telecom: your Unlimited 5G in Lisbon, see Roaming abroad."
    )
    # no profile: the KB's defaults, then the built-in ones (an empty default: nothing)
    assert kb.render(template, "concise", {}, None) == (
        "Tailor Telecom: your your plan in , see our help article."
    )
    assert kb.render(template, "step_by_step", {}) == "1. We are open Mon-Sat 8:00-20:00."
    assert kb.render(template, "empathetic", {"name": "Ada"}) == (
        "Sorry Ada. Connecting you to a Tailor Telecom agent."
    )


def test_article_url_and_snippet(tmp_path: Path) -> None:
    (tmp_path / "kb.yaml").write_text(MANIFEST)
    kb = load_kb(tmp_path)
    roaming, bill = kb.article("kb-roaming"), kb.article("kb-bill")
    assert kb.article_url(roaming) == "https://help.tailortelecom.example/a/kb-roaming"
    assert kb.article_url(bill) == "https://tailortelecom.example/bill"
    assert kb.article_snippet(roaming) == (
        "Roaming is included in the EU. Outside it, buy a travel pass."
    )
    assert kb.article_snippet(bill) == "When your bill arrives and how to read it."
    long = Article(id="a", title="t", body="Word " * 200, intents=["x"])
    snippet = KnowledgeBase([long]).article_snippet(long)
    assert len(snippet) <= 300 and snippet.endswith("…")
    assert KnowledgeBase([long]).article_url(long) is None  # no help_url, no url


def test_unknown_custom_placeholder_and_misplaced_sections(tmp_path: Path) -> None:
    (tmp_path / "kb.yaml").write_text(MANIFEST.replace("{city}", "{town}"))
    (tmp_path / "more.yaml").write_text("brand: {name: Other}\n")
    errors = [str(e) for e in check_kb(tmp_path).errors]
    assert errors[1] == "more.yaml: brand: allowed only in kb.yaml at the KB root"
    assert errors[0].startswith(
        "kb.yaml: templates[t-default].variants.concise: unknown placeholder {town}; known: "
    )
    assert "{plan}" in errors[0] and "{city}" in errors[0]


@pytest.mark.parametrize(
    ("manifest", "expected"),
    [
        ("brand: {support_hours: x}\n", "kb.yaml: brand.name: Field required"),
        ("brand: {name: B, help_url: ftp://x}\n", "kb.yaml: brand.help_url: String should match"),
        ("placeholders: {plan: {source: plan}}\n", "kb.yaml: placeholders.plan.source: source"),
        ("placeholders: {brand: {source: tier}}\n", "kb.yaml: placeholders: brand: built-in"),
        ("placeholders: {Plan: {source: tier}}\n", "kb.yaml: placeholders.Plan.[key]: String"),
    ],
)
def test_manifest_errors_name_field_and_reason(
    tmp_path: Path, manifest: str, expected: str
) -> None:
    (tmp_path / "kb.yaml").write_text(manifest)
    (tmp_path / "articles.yaml").write_text(
        "articles:\n  - {id: a1, title: T, body: B, intents: [x]}\n"
    )
    errors = [str(e) for e in check_kb(tmp_path).errors]
    assert len(errors) == 1 and errors[0].startswith(expected), errors


def test_without_a_context_only_builtin_placeholders_are_allowed() -> None:
    with pytest.raises(ValidationError, match="unknown placeholder {plan}"):
        Variants(concise="{plan}", step_by_step="x", empathetic="x")
    variants = Variants.model_validate(
        {"concise": "{plan}", "step_by_step": "x", "empathetic": "x"},
        context={"known_placeholders": {"plan"}},
    )
    template = ResponseTemplate(id="t", default=True, variants=variants)
    assert KnowledgeBase([], [template]).render(template, "concise", {}) == ""


def test_demo_kb_speaks_for_tailor_bank() -> None:
    kb = load_kb(default_kb_dir())
    assert kb.manifest == KBManifest.model_validate({"brand": kb.manifest.brand.model_dump()})
    assert kb.manifest.brand is not None and kb.manifest.brand.name == "Tailor Bank"
    fallback = kb.fallback_template
    assert fallback is not None
    text = kb.render(fallback, "concise", {"name": "Ada"})
    assert "Tailor Bank" in text and "{" not in text


def test_a_rendered_variant_is_the_template_s_own_text_for_each_template_object(
    tmp_path: Path,
) -> None:
    """KnowledgeBase.render remembers each template's variant texts: by the template object,
    so another template under the same id (a reload's) renders its own text."""
    (tmp_path / "kb.yaml").write_text(MANIFEST)
    kb = load_kb(tmp_path)
    profile = {"name": "Ada", "region": "Lisbon"}
    for template in kb.templates:
        for variant in template.variants.names:
            for _ in range(2):  # remembered the second time
                assert kb.render(template, variant, {"name": "Bo"}, profile) == template.render(
                    variant,
                    {**kb.placeholder_values(profile), "name": "Bo"},
                    kb.manifest.defaults(),
                )
    template = kb.template_for("roaming")
    reworded = ResponseTemplate(
        id=template.id, default=True, variants=Variants(concise="Now {name}.", warm="x")
    )
    assert kb.render(reworded, "concise", {"name": "Ada"}) == "Now Ada."
    assert kb.render(template, "concise", {"name": "Ada"}).startswith("Tailor Telecom: your")
    with pytest.raises(ValueError, match="unknown variant 'loud'"):
        kb.render(template, "loud", {})
