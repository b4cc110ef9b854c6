"""An article's reasons, compiled (csrc/reasons.c, article_reasons) against their Python
reference (ReasonWriter.reasons_in_python): the same texts in the same order, the same texts
remembered for the answer, the same signals handed to the callback."""

from __future__ import annotations

import math
import sys
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tailorbot.kb import default_kb_dir, load_kb
from tailorbot.models.recommend.base import UserContext
from tailorbot.models.recommend.evidence import Evidence
from tailorbot.models.recommend.hybrid import SIGNAL_ORDER
from tailorbot.models.recommend.reasons import MENTIONED_WORDS, REASON_MIN, ReasonWriter
from tailorbot.models.recommend.text import terms_and_words
from tests.native_support import loops, needs_build

compiled = getattr(loops, "article_reasons", None)  # None: not built (see native_support)
WORDS = ("card", "cards", "arrived", "pin", "transfer", "refund", "rate", "top", "up", "fee")
TERMS = frozenset(term for _, term in terms_and_words(" ".join(WORDS))[1][::2])


class Recorded:
    """A callback that words a signal from its name and remembers what it was asked."""

    def __init__(self) -> None:
        self.asked: list[tuple[Any, ...]] = []

    def __call__(self, name: str, *extra: Any) -> str | None:
        self.asked.append((name, *extra))
        worded = extra[-1]
        if name == "popularity":  # shared by the answer, as the writer's own
            worded[name] = f"popular {len(self.asked)}"
            return worded[name]
        return None if name == "cooccurrence" else f"{name} {len(self.asked)}"


def both(
    weighted: dict, terms: Any, words: Any, worded: dict
) -> tuple[list[str], list[str], dict, dict]:
    """The compiled and the reference reasons, each with a fresh callback and a copy of
    ``worded``; their callbacks' questions compared."""
    ours, theirs = Recorded(), Recorded()
    mine, reference = dict(worded), dict(worded)
    got = compiled(weighted, terms, words, mine, ours, ("a1", mine), REASON_MIN, MENTIONED_WORDS)
    writer = ReasonWriter.__new__(ReasonWriter)
    writer.reason_text = theirs  # type: ignore[method-assign]
    want = writer.reasons_in_python(weighted, terms, words, reference, ("a1", reference))
    assert sorted(ours.asked, key=repr) == sorted(theirs.asked, key=repr)
    return got, want, mine, reference


strengths = st.one_of(
    st.sampled_from([0.0, REASON_MIN, -REASON_MIN, 0.0999, 0.5, -0.5, 1.5]),
    st.floats(allow_nan=True, allow_infinity=True),
)


@needs_build
@settings(max_examples=300, deadline=None)
@given(
    signals=st.lists(
        st.tuples(st.sampled_from((*SIGNAL_ORDER, "other")), strengths), max_size=9
    ),
    message=st.lists(st.sampled_from((*WORDS, "the", "my")), max_size=12),
    shared=st.dictionaries(st.sampled_from(("intent", "popularity", "history")),
                           st.sampled_from(("said before", None)), max_size=2),
)  # fmt: skip
def test_the_compiled_reasons_are_the_python_reference(
    signals: list[tuple[str, float]], message: list[str], shared: dict
) -> None:
    weighted = dict(signals)
    _, words = terms_and_words(" ".join(message))
    got, want, mine, reference = both(weighted, TERMS, words, shared)
    assert got == want
    assert mine == reference


@needs_build
def test_ties_keep_the_signals_order_and_the_words_are_cut() -> None:
    _, words = terms_and_words("card arrived pin transfer rate up")  # all but pin the article's
    tied = dict.fromkeys(("text", "intent", "history", "popularity"), 0.5)
    got, want, _, _ = both(tied, TERMS, words, {"intent": "matches"})
    assert got == want == [
        "your message mentions card, arrived, transfer, rate", "matches", "history 1",
        "popular 2",
    ]  # fmt: skip
    one = compiled({"text": 0.3}, TERMS, words, {}, Recorded(), ({},), REASON_MIN, 1)
    assert one == ["your message mentions card"]
    assert both({"text": math.nan, "intent": -0.2}, TERMS, words, {})[0] == ["intent 1"]


@needs_build
def test_what_the_python_path_must_read_is_left_to_it() -> None:
    _, words = terms_and_words("my card")
    others = {
        "an int strength": ({"text": 1}, TERMS, words, {}),
        "a name that is no str": ({1: 0.5}, TERMS, words, {}),
        "terms in a list": ({"text": 0.5}, sorted(TERMS), words, {}),
        "words in a tuple": ({"text": 0.5}, TERMS, tuple(words), {}),
        "a word that is no pair": ({"text": 0.5}, TERMS, [("card",)], {}),
        "weights in a mapping of another type": (
            type("Weighted", (dict,), {})(text=0.5), TERMS, words, {}
        ),
    }  # fmt: skip
    for name, (weighted, terms, pairs, worded) in others.items():
        assert compiled(weighted, terms, pairs, worded, Recorded(), ("a1", worded),
                        REASON_MIN, MENTIONED_WORDS) is None, name  # fmt: skip
    # a value left to Python after strong ones: what was held is let go, nothing more
    name, other = "text", "intent"
    held = sys.getrefcount(name), sys.getrefcount(other)
    for _ in range(1000):
        assert compiled({name: 0.5, other: 0.9, "history": 1}, TERMS, words, {}, Recorded(),
                        ("a1", {}), REASON_MIN, MENTIONED_WORDS) is None  # fmt: skip
    assert (sys.getrefcount(name), sys.getrefcount(other)) == held
    for mentioned in (0, 17):
        assert compiled({"text": 0.5}, TERMS, words, {}, Recorded(), ({},), REASON_MIN,
                        mentioned) is None  # fmt: skip


@needs_build
def test_an_error_in_the_callback_reaches_the_caller() -> None:
    def failing(name: str, *extra: Any) -> str:
        raise KeyError(name)

    with pytest.raises(KeyError, match="history"):
        compiled({"history": 0.5}, TERMS, [], {}, failing, (), REASON_MIN, MENTIONED_WORDS)
    with pytest.raises(TypeError, match="8 arguments"):
        compiled({}, TERMS, [])


def test_the_writer_words_a_real_answer_the_same_either_way(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Through ReasonWriter.reasons on the bundled knowledge base: the same texts with the
    extension and without it, and the answer's shared texts worded once."""
    from tailorbot.models.recommend import reasons as reasons_module

    kb = load_kb(default_kb_dir())
    user = UserContext.from_view(
        {"tier": "gold", "articles_resolved_by_intent": {"card_arrival": ["kb-card-arrival"]}}
    )
    _, words = terms_and_words("my card has not arrived yet, what is the exchange rate")
    evidence = Evidence(links={"kb-card-arrival": (0.4, "kb-exchange-rate")})
    weighted = {"text": 0.6, "intent": 1.2, "history": 1.0, "cooccurrence": 0.3,
                "popularity": 0.2}  # fmt: skip

    def answer() -> tuple[list[list[str]], dict]:
        writer, worded = ReasonWriter(kb), {}
        texts = [
            writer.reasons(
                a, weighted, user, words, "card_arrival", 0.8, evidence, None, worded
            )  # fmt: skip
            for a in ("kb-card-arrival", "kb-exchange-rate", "kb-age-limit")
        ]
        return texts, worded

    got, worded = answer()
    with monkeypatch.context() as patch:
        patch.setattr(reasons_module, "native", lambda: None)
        assert answer() == (got, worded)
    assert got[0][:2] == ["matches intent card_arrival (0.80)",
                          "it resolved your card_arrival issue before"]  # fmt: skip
    assert worded == {"intent": "matches intent card_arrival (0.80)",
                      "popularity": "popular with similar gold customers"}  # fmt: skip
