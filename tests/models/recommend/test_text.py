from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tailorbot.kb.loader import default_kb_dir, load_kb
from tailorbot.models.intent.dataset import bundled_dataset
from tailorbot.models.recommend import text as text_module
from tailorbot.models.recommend.text import (
    STOP_WORDS,
    BM25Index,
    article_document,
    stem,
    terms_in_python,
    tokenize,
)

DOCS = [
    ("card", "Card delivery. Your new card arrives within a week of ordering it."),
    ("rates", "Exchange rates. We use the daily interbank exchange rate for every currency."),
    ("pin", "Change your PIN at any cash machine. Your PIN is never sent by post."),
]


def test_tokenize_drops_stop_words_and_stems() -> None:
    assert tokenize("Where is my card? It hasn't ARRIVED") == ["card", "arriv"]
    assert stem("arrival") == stem("arrived")
    assert tokenize("card_arrival") == ["card", "arriv"]


def _compiled_terms(text: str) -> list[str]:
    loops = text_module.native()
    if loops is None:
        pytest.skip("the extension is not built here (tests/test_native.py requires it in CI)")
    terms: list[str] = loops.stemmed_terms(text, STOP_WORDS, stem)
    return terms


def _compiled_terms_and_words(text: str) -> tuple[list[str], list[tuple[str, str]]]:
    loops = text_module.native()
    if loops is None:
        pytest.skip("the extension is not built here (tests/test_native.py requires it in CI)")
    found: tuple[list[str], list[tuple[str, str]]] = loops.message_terms(text, STOP_WORDS, stem)
    return found


def _words_in_python(text: str) -> list[tuple[str, str]]:
    """message_words as its docstring says, each piece's terms from the Python path."""
    seen: dict[str, str] = {}
    for piece in text.lower().replace("_", " ").split():
        word = piece.strip(text_module.WORD_EDGES)
        terms = terms_in_python(word)
        if len(terms) == 1:
            seen.setdefault(word, terms[0])
    return list(seen.items())


def test_compiled_terms_are_the_python_paths_on_the_bundled_messages() -> None:
    messages = bundled_dataset("banking77", "test").texts
    assert [_compiled_terms(m) for m in messages] == [terms_in_python(m) for m in messages]
    assert [_compiled_terms_and_words(m) for m in messages] == [
        (terms_in_python(m), _words_in_python(m)) for m in messages
    ]
    assert [text_module.message_words(m) for m in messages] == [
        _words_in_python(m) for m in messages
    ]


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.sampled_from(
            [
                *"abcXYZ019_ -'?!\t\n",
                "\u212a",
                "\u0130",
                "\u00e9",
                "\u00df",
                "\u0391",
                "the ",
                "card",
                "ARRIVED",
                "pending",
                "hasn't",
                "\U0001f600",
                *'.,;:()[]"',  # a word's edges
                "\u00a0",  # whitespace to str.split: no-break, line separator, ideographic,
                "\u2028",  # and the ASCII separators \x1c-\x1f
                "\u3000",
                "\x1c",
                "\x1f",
            ]
        ),
        max_size=40,
    ).map("".join)
)
def test_compiled_terms_are_the_python_paths_on_any_text(text: str) -> None:
    # the Kelvin sign and the dotted capital I lower to ASCII letters (k; i and a dot)
    assert _compiled_terms(text) == terms_in_python(text)
    assert _compiled_terms_and_words(text) == (terms_in_python(text), _words_in_python(text))


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=60))
def test_compiled_terms_and_words_are_the_python_paths_on_arbitrary_unicode(text: str) -> None:
    assert _compiled_terms_and_words(text) == (terms_in_python(text), _words_in_python(text))


def test_compiled_terms_refuse_a_stop_list_of_another_type_and_pass_stems_errors_on() -> None:
    _compiled_terms("")  # skips where the extension is not built
    loops = text_module.native()
    with pytest.raises(TypeError):
        loops.stemmed_terms("card", set(STOP_WORDS), stem)  # a frozenset only

    def failing(word: str) -> str:
        raise RuntimeError(word)

    with pytest.raises(RuntimeError, match="card"):
        loops.stemmed_terms("the card", STOP_WORDS, failing)
    with pytest.raises(TypeError):
        loops.message_terms("card", set(STOP_WORDS), stem)
    with pytest.raises(RuntimeError, match="card"):
        loops.message_terms("the card", STOP_WORDS, failing)

    class Shouting(str):
        def lower(self) -> str:
            return 42  # type: ignore[return-value]

    for call in (loops.stemmed_terms, loops.message_terms):
        with pytest.raises(TypeError, match="must return a str"):
            call(Shouting("card"), STOP_WORDS, stem)


def test_best_document_ranks_first_and_unrelated_score_zero() -> None:
    index = BM25Index().fit(DOCS)
    scores = index.scores("my card has not arrived")
    assert max(scores, key=scores.get) == "card"
    assert "rates" not in scores
    assert index.scores("nothing relevant here xyz") == {}


def test_rare_terms_weigh_more_than_common_ones() -> None:
    index = BM25Index().fit(DOCS)
    # "your" is a stop word; "pin" occurs in one document only, "exchange" in one as well,
    # but the query repeats "pin": the PIN article must win.
    scores = index.scores("pin pin exchange")
    assert scores["pin"] > scores["rates"]


def test_normalized_scores_top_is_one() -> None:
    index = BM25Index().fit(DOCS)
    normalized = index.normalized("exchange rate for a currency")
    assert normalized["rates"] == pytest.approx(1.0)
    assert all(0.0 < v <= 1.0 for v in normalized.values())
    assert index.normalized("") == {}


def test_fit_rejects_duplicates_and_bad_parameters() -> None:
    with pytest.raises(ValueError, match="duplicate"):
        BM25Index().fit([("a", "x"), ("a", "y")])
    with pytest.raises(ValueError):
        BM25Index(b=1.5)
    assert BM25Index().fit([]).scores("card") == {}


@pytest.mark.parametrize("compiled", [True, False])
def test_the_documents_sharing_words_are_among_the_matches(
    monkeypatch: pytest.MonkeyPatch, compiled: bool
) -> None:
    # The recommender's relevant set (in HybridRecommender.recommend) takes `shared` as a
    # subset of the scores: in C (TermIndex.match) and in the Python reference alike.
    if compiled and text_module.native() is None:
        pytest.skip("the extension is not built here (tests/test_native.py requires it in CI)")
    if not compiled:
        monkeypatch.setattr(text_module, "native", lambda: None)
    index = BM25Index().fit(
        (a.id, article_document(a, 2)) for a in load_kb(default_kb_dir()).articles
    )
    messages = [*bundled_dataset("banking77", "test").texts[::10], "", "the of and", "xyzzy"]
    found_shared = 0
    for message in messages:
        terms = tokenize(message)
        for need in (0, 1, 2, 3):
            scores, shared = index.match(message, terms, need)
            assert shared <= scores.keys(), message
            found_shared += len(shared)
    assert found_shared > 0
