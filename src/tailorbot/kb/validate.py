"""Read a KB folder and report every problem as ``file: field: reason``.

Checks, per file: YAML syntax, the ``articles``/``templates`` sections, each record's fields
(required, types, ids, placeholders: the built-in ones and those the root ``kb.yaml``
declares), and the ``brand``/``placeholders`` sections, allowed in the root ``kb.yaml``
only. Across files: duplicate ids, templates naming an unknown article, an intent claimed
by two templates, more than one default template, a template with no intents (unless it is
the default, the ``fallback`` one or one named after a chatbot response, ``utter_...``) and,
when a label set is given, intents it does not know. Warnings (not errors): labels without any
article, no default template, no ``fallback`` template.

>>> import pathlib, tempfile
>>> folder = pathlib.Path(tempfile.mkdtemp())
>>> _ = (folder / "kb.yaml").write_text('''
... articles:
...   - {id: a1, title: T, body: B, intents: [card_arival]}
... ''')
>>> [str(e) for e in check_kb(folder, labels=["card_arrival"]).errors]
["kb.yaml: articles[a1].intents[0]: unknown intent 'card_arival' (did you mean 'card_arrival'?)"]
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from tailorbot.kb.manifest import MANIFEST_FILE, MANIFEST_SECTIONS, KBManifest
from tailorbot.kb.model import (
    FALLBACK_TEMPLATE_ID,
    KNOWN_PLACEHOLDERS,
    NO_ARTICLE_INTENTS,
    Article,
    KnowledgeBase,
    ResponseTemplate,
    is_fallback_template_id,
)

SECTIONS: dict[str, type[BaseModel]] = {"articles": Article, "templates": ResponseTemplate}
SUFFIXES = (".yaml", ".yml")
RESPONSE_PREFIX = "utter_"  # templates named after a Rasa response need no intents


@dataclass(frozen=True, slots=True)
class KBIssue:
    file: str
    field: str
    reason: str

    def __str__(self) -> str:
        return f"{self.file}: {self.field}: {self.reason}"


@dataclass
class KBReport:
    """What :func:`check_kb` found; ``kb`` is set only when there are no errors."""

    files: list[str] = field(default_factory=list)
    errors: list[KBIssue] = field(default_factory=list)
    warnings: list[KBIssue] = field(default_factory=list)
    kb: KnowledgeBase | None = None

    @property
    def ok(self) -> bool:
        return not self.errors


@dataclass(frozen=True, slots=True)
class _Located:
    record: Any
    file: str
    where: str  # e.g. "articles[kb-card-arrival]"


def check_kb(directory: str | Path, labels: Iterable[str] | None = None) -> KBReport:
    """Validate the KB in ``directory``; with ``labels``, intents must be among them."""
    root = Path(directory)
    report = KBReport()
    if not root.is_dir():
        report.errors.append(KBIssue(str(root), "-", "not a directory"))
        return report
    paths = sorted(
        p
        for p in root.rglob("*")
        if p.suffix in SUFFIXES and p.is_file() and not _hidden(p.relative_to(root))
    )
    if not paths:
        report.errors.append(KBIssue(str(root), "-", "no .yaml or .yml files"))
        return report
    located: dict[str, list[_Located]] = {name: [] for name in SECTIONS}
    names = [path.relative_to(root).as_posix() for path in paths]
    documents = {name: _load(path, name, report) for path, name in zip(paths, names, strict=True)}
    manifest = _read_manifest(documents.get(MANIFEST_FILE), report)
    context = {KNOWN_PLACEHOLDERS: manifest.known()}
    for name, document in documents.items():
        report.files.append(name)
        _read_document(document, name, located, report, context)
    label_set = {str(label) for label in labels} if labels is not None else None
    _check_articles(located["articles"], label_set, report)
    _check_templates(located["templates"], located["articles"], label_set, report)
    if report.ok:
        sources = {
            f"{section[:-1]}:{item.record.id}": item.file
            for section in SECTIONS
            for item in located[section]
        }
        kb = KnowledgeBase(
            (item.record for item in located["articles"]),
            (item.record for item in located["templates"]),
            sources,
            manifest,
        )
        report.kb = kb
        if kb.default_template is None:  # the decision service cannot answer without one
            report.errors.append(
                KBIssue(
                    str(root),
                    "templates",
                    "no default template (default: true): intents without a template of "
                    "their own need it for their reply",
                )
            )
        if kb.fallback_template is None:
            report.warnings.append(
                KBIssue(
                    str(root),
                    "templates",
                    f"no {FALLBACK_TEMPLATE_ID!r} template: hand-overs reuse the intent's template",
                )
            )
        for label in kb.uncovered(sorted(label_set or ())):
            report.warnings.append(
                KBIssue(str(root), "articles", f"intent {label!r} has no article")
            )
    return report


def _hidden(relative: Path) -> bool:
    return any(part.startswith(".") for part in relative.parts)


class _Unreadable:
    """A file that could not be parsed (its error is already reported)."""


_UNREADABLE = _Unreadable()


def _load(path: Path, name: str, report: KBReport) -> Any:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        report.errors.append(KBIssue(name, "-", f"not UTF-8 text ({exc.reason})"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        report.errors.append(KBIssue(name, "-", f"invalid YAML{where}: {problem}"))
    return _UNREADABLE


def _read_manifest(document: Any, report: KBReport) -> KBManifest:
    """The root kb.yaml's brand and placeholders (an empty manifest when it has none)."""
    if not isinstance(document, dict):
        return KBManifest()
    sections = {key: document[key] for key in MANIFEST_SECTIONS if key in document}
    try:
        return KBManifest.model_validate(sections)
    except ValidationError as exc:
        for error in exc.errors(include_url=False):
            report.errors.append(KBIssue(MANIFEST_FILE, _loc(error["loc"])[1:], _message(error)))
        return KBManifest()


def _read_document(
    document: Any,
    name: str,
    located: dict[str, list[_Located]],
    report: KBReport,
    context: dict[str, Any],
) -> None:
    if document is _UNREADABLE:
        return
    if document is None:
        report.warnings.append(KBIssue(name, "-", "empty file"))
        return
    if not isinstance(document, dict):
        report.errors.append(
            KBIssue(name, "-", "expected a mapping with 'articles' and/or 'templates' lists")
        )
        return
    for key, items in document.items():
        if key in MANIFEST_SECTIONS:
            if name != MANIFEST_FILE:
                report.errors.append(
                    KBIssue(name, str(key), f"allowed only in {MANIFEST_FILE} at the KB root")
                )
            continue
        model = SECTIONS.get(str(key))
        if model is None:
            expected = "', '".join([*SECTIONS, *MANIFEST_SECTIONS])
            report.errors.append(KBIssue(name, str(key), f"unknown section; expected '{expected}'"))
            continue
        if not isinstance(items, list):
            report.errors.append(KBIssue(name, str(key), "must be a list"))
            continue
        for index, item in enumerate(items):
            where = _where(str(key), index, item)
            if not isinstance(item, dict):
                report.errors.append(KBIssue(name, where, "must be a mapping"))
                continue
            try:
                record = model.model_validate(item, context=context)
            except ValidationError as exc:
                for error in exc.errors(include_url=False):
                    report.errors.append(KBIssue(name, where + _loc(error["loc"]), _message(error)))
                continue
            located[str(key)].append(_Located(record, name, where))


def _check_articles(articles: list[_Located], labels: set[str] | None, report: KBReport) -> None:
    _check_unique(articles, "article", report)
    for item in articles:
        _check_intents(item, item.record.intents, labels, report)


def _check_templates(
    templates: list[_Located],
    articles: list[_Located],
    labels: set[str] | None,
    report: KBReport,
) -> None:
    _check_unique(templates, "template", report)
    article_ids = {item.record.id for item in articles}
    owner: dict[str, _Located] = {}
    default: _Located | None = None
    for item in templates:
        template: ResponseTemplate = item.record
        if template.article is not None and template.article not in article_ids:
            report.errors.append(
                KBIssue(item.file, f"{item.where}.article", f"unknown article {template.article!r}")
            )
        if not template.intents and not _stands_alone(template):
            report.errors.append(
                KBIssue(
                    item.file,
                    f"{item.where}.intents",
                    f"give intents, set default: true, use id {FALLBACK_TEMPLATE_ID!r} (or "
                    f"'fallback-<language>', e.g. 'fallback-de'), or name it after a chatbot "
                    f"response ({RESPONSE_PREFIX}...)",
                )
            )
        if template.default:
            if default is not None:
                report.errors.append(
                    KBIssue(
                        item.file,
                        f"{item.where}.default",
                        f"a second default template "
                        f"(first: {default.record.id!r} in {default.file})",
                    )
                )
            else:
                default = item
        _check_intents(item, template.intents, labels, report)
        for index, intent in enumerate(template.intents):
            first = owner.setdefault(intent, item)
            if first is not item:
                report.errors.append(
                    KBIssue(
                        item.file,
                        f"{item.where}.intents[{index}]",
                        f"intent {intent!r} already has template "
                        f"{first.record.id!r} ({first.file})",
                    )
                )


def _stands_alone(template: ResponseTemplate) -> bool:
    """Templates used without an intent: the default, the fallback (``fallback`` or one per
    language, ``fallback-de``), and those a chatbot asks for by name (Rasa's NLG endpoint
    asks for ``utter_*`` responses)."""
    return (
        template.default
        or is_fallback_template_id(template.id)
        or template.id.startswith(RESPONSE_PREFIX)
    )


def _check_unique(items: list[_Located], kind: str, report: KBReport) -> None:
    seen: dict[str, _Located] = {}
    for item in items:
        first = seen.setdefault(item.record.id, item)
        if first is not item:
            report.errors.append(
                KBIssue(
                    item.file,
                    f"{item.where}.id",
                    f"duplicate {kind} id {item.record.id!r} (first in {first.file})",
                )
            )


def _check_intents(
    item: _Located, intents: list[str], labels: set[str] | None, report: KBReport
) -> None:
    if labels is None:
        return
    for index, intent in enumerate(intents):
        if intent in labels or intent in NO_ARTICLE_INTENTS:
            continue
        close = difflib.get_close_matches(intent, sorted(labels), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        report.errors.append(
            KBIssue(item.file, f"{item.where}.intents[{index}]", f"unknown intent {intent!r}{hint}")
        )


def _where(section: str, index: int, item: Any) -> str:
    ident = item.get("id") if isinstance(item, dict) else None
    if isinstance(ident, str) and ident.strip() and "]" not in ident:
        return f"{section}[{ident.strip()}]"
    return f"{section}[{index}]"


def _loc(loc: tuple[Any, ...]) -> str:
    return "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in loc)


def _message(error: Any) -> str:
    msg = str(error["msg"])
    for prefix in ("Value error, ", "Assertion failed, "):
        if msg.startswith(prefix):
            msg = msg[len(prefix) :]
    if error.get("type") == "string_type" and isinstance(error.get("input"), dict):
        msg += " (YAML read a mapping: put text containing ': ' in quotes)"
    return msg
