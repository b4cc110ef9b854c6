"""The recommender's slice of a feature view, compiled (csrc/user_context.c) against its
Python reference (UserContext.from_view_in_python): the same fields of the same types, for
views as the feature view makes them and for anything else a caller may pass."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tailorbot.features.view import feature_view
from tailorbot.models.recommend.base import UserContext
from tests.native_support import loops, needs_build
from tests.stream.eventgen import T0, event_streams, record_of

compiled = getattr(loops, "user_context", None)  # None: not built (see native_support)


def same(view: object) -> UserContext:
    got = UserContext.from_view(view)  # type: ignore[arg-type]
    want = UserContext.from_view_in_python(view)  # type: ignore[arg-type]
    assert got == want
    assert type(got) is UserContext
    assert [type(field) for field in got] == [type(field) for field in want]
    assert {k: type(v) for k, v in got.resolved_by_intent.items()} == {
        k: type(v) for k, v in want.resolved_by_intent.items()
    }
    return got


@needs_build
@settings(max_examples=150, deadline=None)
@given(events=event_streams(max_users=1), hours=st.integers(0, 24 * 40), tier=st.sampled_from(
    [None, "gold", "", "standard"]
))  # fmt: skip
def test_the_compiled_context_of_any_view_is_the_python_reference(
    events: list[dict], hours: int, tier: str | None
) -> None:
    record = record_of(events)
    view = feature_view(record, {"tier": tier} if tier is not None else None, T0 + hours * 3600)
    assert compiled(UserContext, view) is not None
    same(view)
    same(orjson.loads(orjson.dumps(view)))  # a view as a caller may have stored it


@needs_build
def test_what_the_python_path_must_read_is_left_to_it() -> None:
    full = {
        "personalization": False,
        "tier": "gold",
        "segment": "vip",
        "language": "",
        "recent_intents": ["a", "lost_card"],
        "articles_viewed": ["kb-1", "kb-2"],
        "articles_helpful": [],
        "articles_unhelpful": None,
        "articles_resolved_by_intent": {"lost_card": ["kb-1"], "": ["kb-2"]},
    }
    got = same(full)
    assert got.session_intent == "lost_card" and got.language is None
    assert got.viewed == frozenset({"kb-1", "kb-2"}) and got.unhelpful == frozenset()
    assert got.resolved_by_intent == {"lost_card": ("kb-1",), "": ("kb-2",)}
    for view in ({}, None, {"tier": None}):
        same(view)
    assert compiled(UserContext, {}) is None

    class Name(str):
        pass

    others = {
        "a tier that is no str": {"tier": 3},
        "a str subclass": {"segment": Name("vip")},
        "ids as a tuple": {"articles_viewed": ("kb-1",)},
        "a personalization that is no bool": {"personalization": 1},
        "recent intents as a tuple": {"recent_intents": ("a",)},
        "resolved as lists of tuples": {"articles_resolved_by_intent": {"a": ("kb-1",)}},
    }
    for name, view in others.items():
        assert compiled(UserContext, view) is None, name
        same(view)
    with pytest.raises(TypeError, match="exactly 2 arguments"):
        compiled(UserContext)
