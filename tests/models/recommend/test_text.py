from __future__ import annotations

import pytest

from tailorbot.kb.loader import default_kb_dir, load_kb
from tailorbot.models.intent.dataset import bundled_dataset
from tailorbot.models.recommend import text as text_module
from tailorbot.models.recommend.hybrid import _document
from tailorbot.models.recommend.text import BM25Index, stem, tokenize

DOCS = [
    ("card", "Card delivery. Your new card arrives within a week of ordering it."),
    ("rates", "Exchange rates. We use the daily interbank exchange rate for every currency."),
    ("pin", "Change your PIN at any cash machine. Your PIN is never sent by post."),
]


def test_tokenize_drops_stop_words_and_stems() -> None:
    assert tokenize("Where is my card? It hasn't ARRIVED") == ["card", "arriv"]
    assert stem("arrival") == stem("arrived")
    assert tokenize("card_arrival") == ["card", "arriv"]


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
    # The recommender's relevant set (hybrid._relevant) takes `shared` as a subset of the
    # scores: in C (TermIndex.match) and in the Python reference alike.
    if compiled and text_module.native() is None:
        pytest.skip("the extension is not built here (tests/test_native.py requires it in CI)")
    if not compiled:
        monkeypatch.setattr(text_module, "native", lambda: None)
    index = BM25Index().fit((a.id, _document(a, 2)) for a in load_kb(default_kb_dir()).articles)
    messages = [*bundled_dataset("banking77", "test").texts[::10], "", "the of and", "xyzzy"]
    found_shared = 0
    for message in messages:
        terms = tokenize(message)
        for need in (0, 1, 2, 3):
            scores, shared = index.match(message, terms, need)
            assert shared <= scores.keys(), message
            found_shared += len(shared)
    assert found_shared > 0
