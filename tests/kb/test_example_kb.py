"""The example KB of docs/kb.md (a mobile operator) passes `tailorbot kb check` and speaks
for its own brand."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from tailorbot.cli import app
from tailorbot.kb import load_kb, read_labels

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "telecom"


def test_kb_check_accepts_the_telecom_example() -> None:
    result = CliRunner().invoke(
        app, ["kb", "check", str(EXAMPLE / "kb"), "--labels", str(EXAMPLE / "intents.txt")]
    )
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("OK: ")
    assert "7 articles" in result.stdout


def test_telecom_templates_render_with_brand_and_profile() -> None:
    kb = load_kb(EXAMPLE / "kb", labels=read_labels(EXAMPLE / "intents.txt"))
    assert kb.manifest.brand is not None and kb.manifest.brand.name == "Tailor Telecom"
    profile = {"name": "Ada", "region": "Japan", "attributes": {"plan": "Unlimited 5G"}}
    roaming = kb.template_for("roaming_charges")
    assert roaming.variants.names == ["brief", "guided", "warm"]  # the KB's own names
    text = kb.render(roaming, "brief", {"name": "Ada"}, profile)
    assert text.startswith("Hi Ada, in the EU your Unlimited 5G works as at home; in Japan")
    fallback = kb.render(kb.fallback_template, "warm", {"name": "Ada"}, profile)
    assert "Tailor Telecom agent" in fallback and "Bank" not in fallback
    article = kb.article("tt-roaming")
    assert kb.article_url(article) == "https://help.tailortelecom.example/articles/tt-roaming"
    assert kb.article_snippet(kb.article("tt-port-in")).startswith("Ask your current operator")
