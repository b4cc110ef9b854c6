"""A template's placeholders filled, compiled (csrc/render.c, fill_template) against the
Python reference (kb.render.filled_in_python): the same text for any pieces and values."""

from __future__ import annotations

import sys
from types import MappingProxyType
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tailorbot.kb.render import MAX_VALUE_CHARS, PLACEHOLDERS, _pieces, filled_in_python, render
from tests.native_support import loops, needs_build

compiled = getattr(loops, "fill_template", None)  # None: not built (see native_support)
NAMES = (*PLACEHOLDERS, "plan", "unknown")


class Shown:
    """A value whose text is its own __str__."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __str__(self) -> str:
        return self.text


texts = st.text(
    st.sampled_from(list("ab é😀") + [" ", "\t", "\n", "\xa0", "\u2028", "\x1c", "\x85"]),
    max_size=12,
) | st.sampled_from(["", " ", "x" * (MAX_VALUE_CHARS + 7), " y" * 150, "Ada  Lovelace "])
values = (
    st.none()
    | texts
    | st.integers(-5, 10**30)
    | texts.map(Shown)
    | texts.map(type("Name", (str,), {}))
)
pieces = st.lists(st.sampled_from(NAMES).map(lambda n: (n,)) | texts, max_size=6).map(tuple)


@needs_build
@settings(max_examples=400, deadline=None)
@given(
    pieces=pieces,
    context=st.dictionaries(st.sampled_from(NAMES), values, max_size=5),
    defaults=st.dictionaries(st.sampled_from(NAMES), texts, max_size=3),
)
def test_the_compiled_filling_is_the_python_reference(
    pieces: tuple, context: dict, defaults: dict
) -> None:
    got = compiled(pieces, context, defaults, PLACEHOLDERS, MAX_VALUE_CHARS)
    assert got == filled_in_python(pieces, context, defaults)
    assert type(got) is str


@needs_build
def test_templates_render_alike_either_way(monkeypatch: pytest.MonkeyPatch) -> None:
    render_module = sys.modules["tailorbot.kb.render"]  # the package exports render()

    cases: list[tuple[str, dict[str, Any], dict[str, str]]] = [
        ("Hi {name}, your {tier} card ({{beta}})", {"tier": "gold"}, {}),
        ("{name.__class__} {name:>9}", {"name": "Ada"}, {}),
        ("{brand}: your {plan}", {}, {"brand": "Tailor Telecom", "plan": "plan"}),
        ("{name}", {"name": "  Ada\n\tLovelace  "}, {}),
        ("{product} {tier}", {"product": None, "tier": ""}, {"tier": " silver "}),
    ]
    got = [render(text, context, defaults) for text, context, defaults in cases]
    monkeypatch.setattr(render_module, "native", lambda: None)
    assert got == [render(text, context, defaults) for text, context, defaults in cases]
    assert got[0] == "Hi there, your gold card ({beta})"
    assert got[3] == "Ada Lovelace" and got[4] == "account silver"


@needs_build
def test_what_the_python_path_must_read_is_left_to_it() -> None:
    pieces = _pieces("Hi {name}")
    assert compiled(pieces, MappingProxyType({}), {}, PLACEHOLDERS, 9) is None
    assert compiled(pieces, {}, MappingProxyType({}), PLACEHOLDERS, 9) is None
    assert compiled((("name", "x"),), {}, {}, PLACEHOLDERS, 9) is None
    assert compiled((1,), {}, {}, PLACEHOLDERS, 9) is None
    assert compiled(pieces, {}, {}, PLACEHOLDERS, -1) is None

    class Broken:
        def __str__(self) -> str:
            raise RuntimeError("no text")

    with pytest.raises(RuntimeError, match="no text"):
        compiled(pieces, {"name": Broken()}, {}, PLACEHOLDERS, 9)
