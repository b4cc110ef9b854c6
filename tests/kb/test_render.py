from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tailorbot.kb import PLACEHOLDERS, PlaceholderError, placeholders, render


def test_fills_known_placeholders_and_defaults() -> None:
    text = "Hi {name}, your {tier} plan. See {article_title}."
    assert render(text, {"name": "Ada", "tier": "gold", "article_title": "Fees"}) == (
        "Hi Ada, your gold plan. See Fees."
    )
    assert render(text, {}) == (
        f"Hi {PLACEHOLDERS['name']}, your {PLACEHOLDERS['tier']} plan. "
        f"See {PLACEHOLDERS['article_title']}."
    )
    assert render(text) == render(text, {"name": None, "tier": "", "article_title": "   "})


def test_escaped_braces_and_malformed_placeholders_stay_literal() -> None:
    assert render("{{name}} is {name}", {"name": "Ada"}) == "{name} is Ada"
    assert render("{name.__class__} {name[0]} {name!r} {name:>20} {0} {}", {"name": "Ada"}) == (
        "{name.__class__} {name[0]} {name!r} {name:>20} {0} {}"
    )
    assert render("lone { and } braces", {}) == "lone { and } braces"


def test_values_are_cleaned() -> None:
    assert render("Hi {name}", {"name": "Ada\n\tLovelace "}) == "Hi Ada Lovelace"
    assert render("{name}", {"name": "x" * 1000}) == "x" * 200
    assert render("{tier}", {"tier": 3}) == "3"
    # a value that looks like a placeholder is not expanded again
    assert render("{name}", {"name": "{tier}"}) == "{tier}"


@given(
    st.text(
        alphabet=st.sampled_from([*" \t\n\r\x0b\x0c\x1c\x85\xa0\u2028\u3000", *"ab\u00e9\u200b"])
    )
)
def test_a_value_s_whitespace_runs_become_one_space_as_the_regex_makes_them(text: str) -> None:
    # every run of Unicode whitespace (re's \s, str.isspace's) as one space, none at the ends
    assert render("{name}", {"name": text}) == (
        re.sub(r"\s+", " ", text).strip()[:200] or PLACEHOLDERS["name"]
    )


def test_unknown_name_in_context_or_not() -> None:
    assert render("a{foo}b", {}) == "ab"
    assert render("a{foo}b", {"foo": "X"}) == "aXb"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("Hi {nme}", "unknown placeholder {nme}"),
        ("{name.upper}", "bad placeholder"),
        ("{name:>10}", "bad placeholder"),
        ("{0}", "bad placeholder"),
        ("{}", "bad placeholder"),
        ("a } b", "unbalanced brace"),
        ("a { b", "unbalanced brace"),
    ],
)
def test_placeholders_reports_problems(text: str, message: str) -> None:
    with pytest.raises(PlaceholderError, match=message):
        placeholders(text)


def test_placeholders_lists_names() -> None:
    assert placeholders("{name}{{x}} {brand} {name}") == ["name", "brand", "name"]


@given(st.text(max_size=200), st.dictionaries(st.sampled_from(list(PLACEHOLDERS)), st.text()))
def test_render_never_raises(text: str, context: dict[str, str]) -> None:
    assert isinstance(render(text, context), str)


def _render_by_substitution(text: str, context: dict, defaults: dict) -> str:
    """render() as one regular-expression substitution per call: the reference for the
    pre-cut templates render() fills."""
    from tailorbot.kb.render import _NAME, _TOKEN, _clean

    def fill(match: re.Match[str]) -> str:
        token = match.group(0)
        if token in ("{{", "}}"):
            return token[0]
        name = match.group(1)
        if not _NAME.match(name):
            return token
        return _clean(context.get(name)) or _clean(defaults.get(name)) or PLACEHOLDERS.get(name, "")

    return _TOKEN.sub(fill, text)


_PARTS = st.sampled_from(
    ["{", "}", "{{", "}}", "{name}", "{tier}", "{plan}", "{Name}", "{}", "{a.b}", "{ name }",
     "Hi ", " ", "\n", "x", "é"]
)  # fmt: skip
_VALUES = st.dictionaries(
    st.sampled_from([*PLACEHOLDERS, "plan"]), st.one_of(st.none(), st.text(max_size=8))
)


@given(st.lists(_PARTS, max_size=12).map("".join), _VALUES, _VALUES)
def test_render_fills_as_one_substitution(text: str, context: dict, defaults: dict) -> None:
    assert render(text, context, defaults) == _render_by_substitution(text, context, defaults)
