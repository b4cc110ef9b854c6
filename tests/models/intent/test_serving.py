from __future__ import annotations

import json
import pickle
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from tailorbot.compiled import native
from tailorbot.models.intent import (
    HybridIntentModel,
    TfidfIntentModel,
    serving,
    static_embeddings,
    tfidf,
)
from tailorbot.models.intent.row_cache import RowCache
from tailorbot.models.intent.serving import SingleTextScorer
from tailorbot.models.intent.static_embeddings import WordLlamaEmbeddings
from tests.models.intent.support import small_dataset

# Repeated words and n-grams (the sublinear tf fix), odd whitespace and case, Unicode,
# unknown words, typos (expanded by the corrector), nothing at all.
VARIED = [
    "",
    "   ",
    "card",
    "card card card",
    "CARD\tcard\n\u00a0Card  card",
    "card\x1ccard\u2028pin\u3000\u3000top\x85up \r\n",
    "my card my card has not arrived, my card!",
    "where is my new card? where is my new card?",
    "asses assess assesses",
    "the the the the the",
    "ünï cödé ﬁle ſtraße",
    "我的卡丢了",
    "qwxzjv zzzzzz",
    "how do I chnage my pin numbr",
    "x" * 300,
]


@pytest.fixture(scope="module")
def model() -> TfidfIntentModel:
    data = small_dataset()
    return TfidfIntentModel().fit(data.texts, data.labels)


def serving_texts() -> list[str]:
    tests = list(small_dataset("test").texts[:80])
    return VARIED + tests + [f"{a} {b}" for a, b in zip(tests, tests[1:], strict=False)]


def fresh(model: TfidfIntentModel) -> TfidfIntentModel:
    """A copy whose serving caches are built anew (they are not pickled)."""
    copy: TfidfIntentModel = pickle.loads(pickle.dumps(model))
    return copy


@pytest.mark.parametrize(
    ("cache", "compiled"), [(serving.WORD_CACHE, False), (3, False), (serving.WORD_CACHE, True)]
)
def test_serving_scores_are_the_batch_paths(
    model: TfidfIntentModel, monkeypatch: pytest.MonkeyPatch, cache: int, compiled: bool
) -> None:
    # Per-word sums, the norm and the fix for repeated n-grams must give the numbers of
    # TfidfVectorizer.transform @ coefficients, also when the word cache keeps starting over
    # (3 words: most messages empty it, longer ones are served without it); so must the
    # compiled blocks.
    monkeypatch.setattr(serving, "WORD_CACHE", cache)
    model = fresh(model)
    texts = serving_texts()
    batch = model.decision_scores(texts)
    corrector = model._corrector
    assert corrector is not None
    coef_t, intercept = model._fitted()
    scorer = SingleTextScorer(model._vectorizers, coef_t, intercept, compiled=compiled)
    assert scorer.compiled == (compiled and native() is not None)
    for _ in range(2):  # cold, then from the cache
        for text, want in zip(texts, batch, strict=True):
            got = scorer.scores(corrector.expand(text))
            np.testing.assert_allclose(got, want, rtol=0, atol=1e-9, err_msg=text)


@pytest.mark.parametrize("compiled", [False, True])
def test_predict_one_matches_predict_proba_closely(
    model: TfidfIntentModel, monkeypatch: pytest.MonkeyPatch, compiled: bool
) -> None:
    if not compiled:  # numpy's softmax and ranking, and the Python blocks
        monkeypatch.setattr(tfidf, "native", lambda: None)
        monkeypatch.setattr(serving, "native", lambda: None)
        model = fresh(model)
    texts = serving_texts()
    batch = model.predict_proba(texts)
    for text, row in zip(texts, batch, strict=True):
        one = model.predict_one(text)
        order = np.argsort(-row, kind="stable")[:5]
        assert [name for name, _ in one.ranking] == [model.labels[i] for i in order]
        np.testing.assert_allclose([p for _, p in one.ranking], row[order], rtol=0, atol=1e-12)


@pytest.mark.parametrize("compiled", [False, True])
def test_threads_sharing_a_small_cache_get_their_own_scores(
    model: TfidfIntentModel, monkeypatch: pytest.MonkeyPatch, compiled: bool
) -> None:
    # Serving runs in a thread pool: a message's cached rows must not be refilled with
    # another word's while it still reads them (nor the compiled block's counts shared).
    monkeypatch.setattr(serving, "WORD_CACHE", 12)
    model = fresh(model)
    texts = serving_texts()
    want = model.decision_scores(texts)
    corrector = model._corrector
    assert corrector is not None
    scorer = SingleTextScorer(model._vectorizers, *model._fitted(), compiled=compiled)
    failures: list[str] = []

    def serve(offset: int) -> None:
        for k in range(len(texts) * 3):
            i = (k + offset) % len(texts)
            if not np.allclose(scorer.scores(corrector.expand(texts[i])), want[i], atol=1e-9):
                failures.append(texts[i])

    threads = [threading.Thread(target=serve, args=(n * 7,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []


def test_row_cache_starts_over_when_full_and_serves_long_inputs_uncached() -> None:
    made: list[str] = []

    def make(key: str, row: np.ndarray) -> int:
        made.append(key)
        row.fill(len(key))
        return len(key)

    cache: RowCache[str, int] = RowCache(3, 2, np.float64, make)
    entries, rows = cache.gather(["a", "bb", "a"])
    assert entries == [1, 2, 1] and rows[:, 0].tolist() == [1.0, 2.0, 1.0]
    assert made == ["a", "bb"] and len(cache) == 2
    entries, rows = cache.gather(["ccc", "dddd"])  # would overflow: starts over
    assert rows[:, 1].tolist() == [3.0, 4.0] and len(cache) == 2
    entries, rows = cache.gather(["e", "ff", "ggg", "e"])  # more than it holds: not kept
    assert rows[:, 0].tolist() == [1.0, 2.0, 3.0, 1.0] and len(cache) == 2
    with pytest.raises(ValueError, match="capacity"):
        RowCache(0, 2, np.float64, make)


@pytest.mark.parametrize(
    ("cache", "compiled"),
    [(static_embeddings.TOKEN_CACHE, False), (4, False), (static_embeddings.TOKEN_CACHE, True)],
)
def test_serving_embedding_is_the_float16_rows_mean_bit_for_bit(
    monkeypatch: pytest.MonkeyPatch, cache: int, compiled: bool
) -> None:
    monkeypatch.setattr(static_embeddings, "TOKEN_CACHE", cache)
    if not compiled:
        monkeypatch.setattr(static_embeddings, "native", lambda: None)
    embeddings = WordLlamaEmbeddings(dim=64)
    texts = serving_texts()
    table, tokenizer = embeddings._loaded()
    for _ in range(2):  # cold, then from the cache
        for text in texts:
            ids = tokenizer.encode(text).ids
            want = table[ids].mean(axis=0, dtype=np.float32) if ids else np.zeros(64, np.float32)
            norm = float(np.sqrt(want @ want))
            want = want / norm if norm > 0 else want
            np.testing.assert_array_equal(embeddings.embed_one(text), want, err_msg=text)
    np.testing.assert_allclose(
        [embeddings.embed_one(t) for t in texts], embeddings.embed(texts), rtol=0, atol=1e-6
    )
    copy = pickle.loads(pickle.dumps(embeddings))
    np.testing.assert_array_equal(copy.embed_one(texts[5]), embeddings.embed_one(texts[5]))


def test_compiled_predict_one_never_hands_the_gil_to_another_thread() -> None:
    # In the server a decision thread shares the GIL with the busy event loop: a step that
    # releases it (the tokenizer's batch call did, numpy's argsort too) waits up to the
    # switch interval (5 ms) to get it back, in every decision. Probed in a process of its
    # own: a thread left running by another test would trip the probe.
    if native() is None:
        pytest.skip("the extension is not built here (tests/test_native.py requires it in CI)")
    root = Path(__file__).resolve().parents[3]
    probe = subprocess.run(
        [sys.executable, "-m", "tests.models.intent.gil_probe"],
        cwd=root, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert probe.returncode == 0, probe.stderr[-3000:]
    found = json.loads(probe.stdout.strip().splitlines()[-1])
    assert found == {"compiled": True, "predict_one_released": False, "wait_released": True}


@pytest.mark.parametrize("compiled", [False, True])
def test_hybrid_predict_one_matches_its_batch_path(
    monkeypatch: pytest.MonkeyPatch, compiled: bool
) -> None:
    # The embedding's part of the scores: numpy's float32 product, or the compiled one summed
    # in float64; either is the batch path's to float32 rounding.
    if not compiled:
        for module in (tfidf, serving, static_embeddings):
            monkeypatch.setattr(module, "native", lambda: None)
    data = small_dataset()
    hybrid = fresh(HybridIntentModel(embedding_dim=64).fit(data.texts, data.labels))
    texts = serving_texts()
    batch = hybrid.predict_proba(texts)
    for text, row in zip(texts, batch, strict=True):
        one = hybrid.predict_one(text)
        best = int(np.argmax(row))
        assert one.name == hybrid.labels[best] or row[best] - sorted(row)[-2] < 1e-5, text
        np.testing.assert_allclose(one.confidence, row[best], rtol=0, atol=1e-5, err_msg=text)


def test_hybrid_refit_scores_with_the_new_coefficients_only() -> None:
    # The tokens' kept projections belong to the coefficients they were made with: after a
    # second fit, the model answers exactly as one fitted on that data alone.
    data = small_dataset()
    other = small_dataset(per_intent=10)
    texts = serving_texts()[:40]
    model = HybridIntentModel(embedding_dim=64).fit(data.texts, data.labels)
    before = [model.predict_one(t).confidence for t in texts]  # projections kept
    model.fit(other.texts, other.labels)
    alone = HybridIntentModel(embedding_dim=64).fit(other.texts, other.labels)
    refit = [(model.predict_one(t).name, model.predict_one(t).confidence) for t in texts]
    assert refit == [(alone.predict_one(t).name, alone.predict_one(t).confidence) for t in texts]
    assert [confidence for _, confidence in refit] != before
    assert pickle.loads(pickle.dumps(model))._projections is None  # never pickled
