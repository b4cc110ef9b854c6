from __future__ import annotations

from pathlib import Path

import pytest

from tailorbot.kb import check_kb

GOOD = """
articles:
  - id: a1
    title: Where is my card?
    body: Cards take 5 days.
    intents: [card_arrival]
templates:
  - id: t1
    intents: [card_arrival]
    article: a1
    variants: {concise: "Hi {name}", step_by_step: "1. {article_title}", empathetic: "Sorry {name}"}
  - id: t0
    default: true
    variants: {concise: "c", step_by_step: "s", empathetic: "e"}
  - id: fallback
    variants: {concise: "Passing you on, {name}", step_by_step: "1. Wait", empathetic: "Sorry"}
"""


def _kb(tmp_path: Path, **files: str) -> Path:
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    return tmp_path


def _errors(tmp_path: Path, labels: list[str] | None = None, **files: str) -> list[str]:
    return [str(e) for e in check_kb(_kb(tmp_path, **files), labels).errors]


def test_good_kb(tmp_path: Path) -> None:
    report = check_kb(_kb(tmp_path, **{"kb.yaml": GOOD}), labels=["card_arrival", "age_limit"])
    assert report.ok and report.kb is not None
    assert report.files == ["kb.yaml"]
    assert report.kb.sources == {
        "article:a1": "kb.yaml",
        "template:t1": "kb.yaml",
        "template:t0": "kb.yaml",
        "template:fallback": "kb.yaml",
    }
    assert report.kb.fallback_template is not None
    assert report.kb.template_for("age_limit").id == "t0"
    assert [str(w) for w in report.warnings] == [
        f"{tmp_path}: articles: intent 'age_limit' has no article"
    ]


def test_unknown_intent_with_a_label_set(tmp_path: Path) -> None:
    errors = _errors(tmp_path, ["card_arrivals"], **{"kb.yaml": GOOD})
    reason = "unknown intent 'card_arrival' (did you mean 'card_arrivals'?)"
    assert errors == [
        f"kb.yaml: articles[a1].intents[0]: {reason}",
        f"kb.yaml: templates[t1].intents[0]: {reason}",
    ]


def test_duplicate_ids_across_files(tmp_path: Path) -> None:
    other = "articles:\n  - {id: a1, title: T, body: B, intents: [card_arrival]}\n"
    errors = _errors(tmp_path, **{"a.yaml": GOOD, "b.yaml": other})
    assert errors == ["b.yaml: articles[a1].id: duplicate article id 'a1' (first in a.yaml)"]


def test_missing_fields_and_extra_fields(tmp_path: Path) -> None:
    text = "articles:\n  - {id: a2, body: B, intents: [x], color: red}\n  - {title: T}\n"
    errors = _errors(tmp_path, **{"kb.yaml": text})
    assert "kb.yaml: articles[a2].title: Field required" in errors
    assert "kb.yaml: articles[a2].color: Extra inputs are not permitted" in errors
    assert "kb.yaml: articles[1].id: Field required" in errors


def test_bad_placeholder(tmp_path: Path) -> None:
    text = GOOD.replace('"Hi {name}"', '"Hi {name.__class__}"').replace(
        '"Sorry {name}"', '"Sorry {nme}"'
    )
    errors = _errors(tmp_path, **{"kb.yaml": text})
    assert len(errors) == 2
    assert errors[0].startswith(
        "kb.yaml: templates[t1].variants.concise: bad placeholder {name.__class__}"
    )
    assert errors[1].startswith(
        "kb.yaml: templates[t1].variants.empathetic: unknown placeholder {nme}"
    )


def test_template_references(tmp_path: Path) -> None:
    text = (
        GOOD
        + """
  - id: t2
    intents: [card_arrival]
    article: nope
    variants: {concise: c, step_by_step: s, empathetic: e}
  - id: t3
    default: true
    variants: {concise: c, step_by_step: s, empathetic: e}
  - id: t4
    variants: {concise: c, step_by_step: s, empathetic: e}
  - id: fallback-de
    variants: {concise: c, step_by_step: s, empathetic: e}
  - id: fallback-deutsch
    variants: {concise: c, step_by_step: s, empathetic: e}
"""
    )
    errors = _errors(tmp_path, **{"kb.yaml": text})
    assert errors == [
        "kb.yaml: templates[t2].article: unknown article 'nope'",
        "kb.yaml: templates[t2].intents[0]: "
        "intent 'card_arrival' already has template 't1' (kb.yaml)",
        "kb.yaml: templates[t3].default: a second default template (first: 't0' in kb.yaml)",
        "kb.yaml: templates[t4].intents: give intents, set default: true, use id 'fallback' "
        "(or 'fallback-<language>', e.g. 'fallback-de'), or name it after a chatbot response "
        "(utter_...)",
        "kb.yaml: templates[fallback-deutsch].intents: give intents, set default: true, use id "
        "'fallback' (or 'fallback-<language>', e.g. 'fallback-de'), or name it after a chatbot "
        "response (utter_...)",
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("articles: [\n", "kb.yaml: -: invalid YAML at line 2"),
        ("- a\n- b\n", "kb.yaml: -: expected a mapping"),
        ("faq: []\n", "kb.yaml: faq: unknown section"),
        ("articles: {id: a}\n", "kb.yaml: articles: must be a list"),
        ("articles: [just text]\n", "kb.yaml: articles[0]: must be a mapping"),
        (
            "articles:\n  - id: a\n    title: t\n    body: b\n    intents: [x]\n    steps:\n"
            "      - Day 1: call us\n",
            "kb.yaml: articles[a].steps[0]: Input should be a valid string (YAML read a mapping",
        ),
    ],
)
def test_file_level_problems(tmp_path: Path, text: str, expected: str) -> None:
    errors = _errors(tmp_path, **{"kb.yaml": text})
    assert len(errors) == 1 and errors[0].startswith(expected), errors


def test_folder_problems(tmp_path: Path) -> None:
    assert [str(e) for e in check_kb(tmp_path / "missing").errors] == [
        f"{tmp_path / 'missing'}: -: not a directory"
    ]
    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / ".hidden.yaml").write_text("faq: 1")
    assert [str(e) for e in check_kb(tmp_path).errors] == [f"{tmp_path}: -: no .yaml or .yml files"]


def test_empty_file_is_a_warning_and_subfolders_are_read(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "kb.yml").write_text(GOOD)
    (tmp_path / "empty.yaml").write_text("")
    report = check_kb(tmp_path)
    assert report.ok
    assert report.files == ["empty.yaml", "sub/kb.yml"]
    assert [str(w) for w in report.warnings] == ["empty.yaml: -: empty file"]


def test_a_missing_default_template_is_an_error_a_missing_fallback_a_warning(
    tmp_path: Path,
) -> None:
    text = GOOD[: GOOD.index("  - id: t0")]
    report = check_kb(_kb(tmp_path, **{"kb.yaml": text}))
    assert not report.ok  # the decision service refuses such a KB: no reply for most intents
    assert [str(e).split(": ", 1)[1] for e in report.errors] == [
        "templates: no default template (default: true): intents without a template of "
        "their own need it for their reply"
    ]
    assert ["no 'fallback' template" in str(w) for w in report.warnings] == [True]
