"""Fill response-template placeholders, safely.

A placeholder is ``{name}`` with ``name`` one of :data:`PLACEHOLDERS` or one the KB declares
in its ``kb.yaml`` (:mod:`tailorbot.kb.manifest`); ``{{`` and ``}}`` are literal braces.
Nothing else is interpreted: no attribute or index access, no format specs, no conversions
(``str.format`` would allow ``{name.__class__}`` or ``{name:>999999}``), so a template can
never reach into an object or blow up. A missing or empty value gets the
placeholder's default (the KB's own defaults first, then :data:`PLACEHOLDERS`); anything
malformed is left as written (``kb check`` reports it).

>>> render("Hi {name}, your {tier} card ({{beta}})", {"tier": "gold"})
'Hi there, your gold card ({beta})'
>>> render("{name.__class__} {name:>9}", {"name": "Ada"})
'{name.__class__} {name:>9}'
>>> placeholders("See {article_title}, {name}.")
['article_title', 'name']
>>> render("{brand}: your {plan}", {}, defaults={"brand": "Tailor Telecom", "plan": "plan"})
'Tailor Telecom: your plan'
>>> placeholders("{plan}", known={"plan"})
['plan']
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from functools import lru_cache

from tailorbot.compiled import native

PLACEHOLDERS: dict[str, str] = {
    "name": "there",
    "tier": "standard",
    "product": "account",
    "article_title": "our help article",
    "last_article_title": "the article you looked at earlier",
    # The brand's own values come from the KB's kb.yaml; these are neutral stand-ins.
    "brand": "our team",
    "support_hours": "our opening hours",
    "handoff_text": "A member of our team will take it from here.",
}
"""Built-in placeholders and the text used when neither the context nor the KB has a value."""

MAX_VALUE_CHARS = 200

_TOKEN = re.compile(r"\{\{|\}\}|\{([^{}]*)\}")
_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")


class PlaceholderError(ValueError):
    """A template uses a placeholder that is malformed or unknown."""


def placeholders(text: str, known: Collection[str] | None = None) -> list[str]:
    """Placeholder names used by ``text``, in order; raises :class:`PlaceholderError`.

    ``known`` is the set of allowed names (default: the built-in :data:`PLACEHOLDERS`).
    """
    allowed = PLACEHOLDERS if known is None else known
    names = []
    for match in _TOKEN.finditer(text):
        inner = match.group(1)
        if inner is None:
            continue  # an escaped brace
        if not _NAME.match(inner):
            raise PlaceholderError(
                f"bad placeholder {{{inner}}}: only plain names like {{name}} are allowed"
            )
        if inner not in allowed:
            listed = ", ".join("{" + n + "}" for n in sorted(allowed))
            raise PlaceholderError(f"unknown placeholder {{{inner}}}; known: {listed}")
        names.append(inner)
    stray = _TOKEN.sub("", text)
    if "{" in stray or "}" in stray:
        raise PlaceholderError("unbalanced brace; write {{ or }} for a literal brace")
    return names


def render(
    template_variant: str,
    context: Mapping[str, object] | None = None,
    defaults: Mapping[str, str] | None = None,
) -> str:
    """Fill ``template_variant`` from ``context``, else ``defaults``, else the built-in
    defaults; never raises for missing values. In one compiled call where the extension is
    built (None from it: a mapping of another type, which Python reads)."""
    context = context or {}
    defaults = defaults or {}
    pieces = _pieces(template_variant)
    loops = native()
    if loops is not None:
        found = loops.fill_template(pieces, context, defaults, PLACEHOLDERS, MAX_VALUE_CHARS)
        if found is not None:
            text: str = found  # annotated: cast() is a call at every fill
            return text
    return filled_in_python(pieces, context, defaults)


def filled_in_python(
    pieces: tuple[str | tuple[str], ...], context: Mapping[str, object], defaults: Mapping[str, str]
) -> str:
    """:func:`render`'s filling in Python: the reference the compiled ``fill_template``
    (csrc/render.c) is tested against."""
    out = []
    for piece in pieces:
        if type(piece) is str:
            out.append(piece)
            continue
        name = piece[0]
        value = _clean(context.get(name))
        out.append(value or _clean(defaults.get(name)) or PLACEHOLDERS.get(name, ""))
    return "".join(out)


@lru_cache(maxsize=4096)  # a KB has a few dozen variants, rendered on every decision
def _pieces(text: str) -> tuple[str | tuple[str], ...]:
    """``text`` cut at its tokens, once: literal text (a ``{{`` or ``}}`` as its brace, a
    malformed placeholder as written) and ``(name,)`` for each placeholder to fill."""
    pieces: list[str | tuple[str]] = []
    at = 0
    for match in _TOKEN.finditer(text):
        pieces.append(text[at : match.start()])
        at = match.end()
        token, name = match.group(0), match.group(1)
        if token in ("{{", "}}"):
            pieces.append(token[0])
        elif _NAME.match(name):
            pieces.append((name,))
        else:
            pieces.append(token)
    pieces.append(text[at:])
    return tuple(piece for piece in pieces if piece != "")


def _clean(value: object) -> str:
    """One line of at most :data:`MAX_VALUE_CHARS` characters (values come from users)."""
    if value is None:
        return ""
    # every run of whitespace as one space, none at the ends: what `\s+` -> " " and strip()
    # make (str.split's whitespace is re's `\s`), at a quarter of the regex's cost
    return " ".join(str(value).split())[:MAX_VALUE_CHARS]
