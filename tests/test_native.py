"""The compiled loops (src/tailorbot/csrc/) against their Python references."""

from __future__ import annotations

import math
import os
import pickle
import re
from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.feature_extraction.text import TfidfVectorizer

from tailorbot.models.bandit import LinUCB
from tailorbot.models.intent import TfidfIntentModel
from tailorbot.models.intent.serving import WORD_RUNS, SingleTextScorer, _units
from tests.models.intent.support import small_dataset
from tests.native_support import loops, needs_build


def test_the_project_install_builds_the_extension() -> None:
    # `make` installs the project with its C extension; a failed build must not pass
    # unnoticed in CI as a slower, still-green Python path.
    if os.environ.get("CI") == "true":
        assert loops is not None, "tailorbot._native was not built"
    else:
        pytest.skip("checked under CI=true")


@pytest.fixture(scope="module")
def model() -> TfidfIntentModel:
    data = small_dataset()
    return TfidfIntentModel().fit(data.texts, data.labels)


def scorers(model: TfidfIntentModel) -> tuple[SingleTextScorer, SingleTextScorer]:
    model = pickle.loads(pickle.dumps(model))  # caches built anew
    args = (model._vectorizers, *model._fitted())
    return SingleTextScorer(*args, compiled=True), SingleTextScorer(*args, compiled=False)


# every Unicode width CPython stores (1, 2 and 4 bytes a character), and its whitespace
TEXT = st.text(
    alphabet=st.sampled_from(
        [*"abcdeinorst card pin top up ", "\t", "\n", "\u00a0", "\u3000", "é", "ß", "😀", "ｃ"]
    )
    | st.characters(),
    max_size=80,
)


@needs_build
@settings(max_examples=300, deadline=None)
@given(text=TEXT)
def test_compiled_blocks_score_any_text_as_the_python_blocks(
    model: TfidfIntentModel, text: str
) -> None:
    compiled, python = scorers_of(model)
    np.testing.assert_allclose(compiled.scores(text), python.scores(text), rtol=0, atol=1e-9)


@needs_build
@settings(max_examples=500, deadline=None)
@given(text=TEXT | st.text(alphabet=st.sampled_from([*"ab_1 ", "\u0301", "٣", "½", "é"])))
def test_word_runs_are_the_regex_tokens(text: str) -> None:
    for pattern, min_len in WORD_RUNS.items():
        assert loops.word_runs(text, min_len) == re.findall(pattern, text), pattern


@needs_build
@settings(max_examples=500, deadline=None)
@given(
    text=TEXT | st.text(alphabet=st.sampled_from([*"card pin 1_", "é", "ß", "ǅ", "\u0301", "😀"])),
    known=st.sets(st.sampled_from(["card", "pin", "é", "ß", "ar"])),
)
def test_unknown_words_are_the_regex_runs_of_letters_not_known(text: str, known: set[str]) -> None:
    vocabulary = dict.fromkeys(known, 1)
    want = [w for w in re.findall("[a-z]+|[^a-z]+", text) if w not in vocabulary and w.isalpha()]
    assert loops.unknown_words(text, vocabulary) == want


def test_a_word_pattern_of_runs_is_cut_by_the_compiled_loop_others_by_the_regex() -> None:
    fake = SimpleNamespace(word_runs=lambda text, min_len: [f"{text}/{min_len}"])
    assert _units(TfidfVectorizer(lowercase=False), fake)("Ab") == ["Ab/2"]
    assert _units(TfidfVectorizer(token_pattern=r"(?u)\b\w+\b"), fake)("Ab") == ["ab/1"]
    assert _units(TfidfVectorizer(token_pattern=r"[a-z]+"), fake)("Ab c") == ["ab", "c"]
    assert _units(TfidfVectorizer(strip_accents="ascii"), fake)("Ab é") == ["ab"]
    assert _units(TfidfVectorizer(), None)("Ab c de") == ["ab", "de"]


_SCORERS: dict[int, tuple[SingleTextScorer, SingleTextScorer]] = {}


def scorers_of(model: TfidfIntentModel) -> tuple[SingleTextScorer, SingleTextScorer]:
    """One pair per model for the whole property test (hypothesis reruns the body)."""
    if id(model) not in _SCORERS:
        _SCORERS[id(model)] = scorers(model)
    return _SCORERS[id(model)]


@needs_build
@pytest.mark.parametrize(
    "options",
    [
        {"analyzer": "char_wb", "ngram_range": (1, 4), "sublinear_tf": False},
        {"analyzer": "char_wb", "ngram_range": (3, 3), "lowercase": False},
        {"analyzer": "word", "ngram_range": (1, 3), "sublinear_tf": True},
        {"analyzer": "word", "ngram_range": (2, 2), "strip_accents": "unicode"},
        {"analyzer": "word", "ngram_range": (1, 2), "token_pattern": r"(?u)\b\w+\b"},
        {"analyzer": "word", "ngram_range": (1, 1), "lowercase": False},
        {"analyzer": "word", "ngram_range": (1, 1), "token_pattern": r"[a-z]+"},
    ],
)
def test_other_ngram_ranges_and_options_match_the_vectorizer(options: dict[str, object]) -> None:
    texts = [
        "Where is my card? where IS my card",
        "café crème  brûlée",
        "a b c d e f",
        "x",
        "",
        "top-up top up topup",
    ]
    vectorizer = TfidfVectorizer(**options).fit(texts)  # type: ignore[arg-type]
    rng = np.random.default_rng(0)
    coef = rng.normal(size=(len(vectorizer.vocabulary_), 3)).astype(np.float32)
    intercept = np.zeros(3)
    scorer = SingleTextScorer([vectorizer], coef, intercept, compiled=True)
    assert scorer.compiled
    want = np.asarray(vectorizer.transform(texts) @ coef.astype(np.float64))
    for text, row in zip(texts, want, strict=True):
        np.testing.assert_allclose(scorer.scores(text), row, rtol=0, atol=1e-9, err_msg=text)


@needs_build
@pytest.mark.parametrize("sublinear", [True, False])
@pytest.mark.parametrize("kept", [3, 1000])  # refilled again and again; mostly found
def test_kept_word_sums_score_as_one_row_per_ngram(
    model: TfidfIntentModel, sublinear: bool, kept: int
) -> None:
    assert loops is not None
    vectorizer = next(v for v in model._vectorizers if v.analyzer == "char_wb")
    n = len(vectorizer.vocabulary_)
    coef = np.random.default_rng(1).normal(size=(n, 5)).astype(np.float32)
    idf = np.asarray(vectorizer.idf_, dtype=np.float64)
    args = (vectorizer.vocabulary_, idf, coef, *vectorizer.ngram_range, sublinear, True)
    by_row, by_word = loops.NgramScorer(*args), loops.NgramScorer(*args, word_cache=kept)
    texts = [
        *small_dataset().texts[:300],
        "card card card card",  # one word's n-grams, four times
        "a a a a a a",
        "x" * 200 + " top up " + "é😀" * 40,  # too long to keep
        "",
    ]
    for text in texts * 2:  # the second round finds the kept words
        units = text.lower().split()
        want, got = np.zeros(5), np.zeros(5)
        assert by_word.add_scores(units, got) == by_row.add_scores(units, want)
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-12, err_msg=text)
        assert 0 < by_word.kept_words <= kept or not text
    assert by_row.kept_words == 0


@needs_build
def test_lookup_finds_every_vocabulary_entry_and_nothing_else(model: TfidfIntentModel) -> None:
    assert loops is not None
    for vectorizer in model._vectorizers:
        vocabulary = vectorizer.vocabulary_
        n = len(vocabulary)
        scorer = loops.NgramScorer(
            vocabulary,
            np.ones(n),
            np.zeros((n, 2), dtype=np.float32),
            *vectorizer.ngram_range,
            False,
            vectorizer.analyzer == "char_wb",
        )
        assert all(scorer.lookup(key) == int(j) for key, j in vocabulary.items())
        assert scorer.lookup("never an n-gram here") is None
        assert scorer.lookup("") is None


@needs_build
def test_bad_arguments_are_refused_not_read_out_of_bounds() -> None:
    assert loops is not None
    coef = np.zeros((2, 3), dtype=np.float32)
    idf = np.ones(2)
    with pytest.raises(ValueError, match="coef"):
        loops.NgramScorer({"a": 0}, idf, coef.astype(np.float64), 1, 2, False, True)
    with pytest.raises(ValueError, match="coef"):
        loops.NgramScorer({"a": 0}, idf, np.asfortranarray(coef), 1, 2, False, True)
    with pytest.raises(ValueError, match="one row per idf"):
        loops.NgramScorer({"a": 0}, np.ones(3), coef, 1, 2, False, True)
    with pytest.raises(ValueError, match="out of range"):
        loops.NgramScorer({"a": 2}, idf, coef, 1, 2, False, True)
    with pytest.raises(TypeError, match="keys"):
        loops.NgramScorer({1: 0}, idf, coef, 1, 2, False, True)
    with pytest.raises(ValueError, match="n-gram range"):
        loops.NgramScorer({"a": 0}, idf, coef, 2, 1, False, True)
    with pytest.raises(ValueError, match="word_cache"):
        loops.NgramScorer({"a": 0}, idf, coef, 1, 2, False, True, word_cache=-1)
    scorer = loops.NgramScorer({" a": 0, "a ": 1}, idf, coef, 1, 2, False, True)
    with pytest.raises(ValueError, match="scores"):
        scorer.add_scores(["a"], np.zeros(4))
    with pytest.raises(ValueError, match="scores"):
        scorer.add_scores(["a"], np.zeros(3, dtype=np.float32))
    with pytest.raises(TypeError, match="list of str"):
        scorer.add_scores(["a", 1], np.zeros(3))
    scores = np.zeros(3)
    assert scorer.add_scores(["a", "b"], scores) == 2  # " a", "a " known; "b"'s are not
    with pytest.raises(RuntimeError, match="already initialized"):
        scorer.__init__({"a": 0}, idf, coef, 1, 2, False, True)  # type: ignore[misc]
    table = np.zeros((4, 2), dtype=np.float16)
    with pytest.raises(IndexError, match="out of range"):
        loops.mean_rows(table, [0, 4], np.empty(2, np.float32))
    with pytest.raises(IndexError, match="out of range"):
        loops.mean_rows(table, [-1], np.empty(2, np.float32))
    with pytest.raises(ValueError, match="out"):
        loops.mean_rows(table, [0], np.empty(3, np.float32))
    with pytest.raises(ValueError, match="table"):
        loops.mean_rows(table.astype(np.float32), [0], np.empty(2, np.float32))


@needs_build
def test_the_arguments_are_checked_and_converted_as_pyarg_parsetuple_does() -> None:
    # The functions take their arguments as the array a call hands over (args.c), with
    # PyArg_ParseTuple's checks, conversions and messages: the count, a type ("O!", "U"),
    # an index ("n": any __index__, a bool too, never a float), a double ("d": __float__).
    assert loops is not None
    with pytest.raises(TypeError, match=r"^word_runs\(\) takes exactly 2 arguments \(1 given\)$"):
        loops.word_runs("ab cd")
    with pytest.raises(TypeError, match=r"^word_runs\(\) argument 1 must be str, not bytes$"):
        loops.word_runs(b"ab cd", 2)
    with pytest.raises(TypeError, match="integer"):
        loops.word_runs("ab cd", 2.0)
    assert loops.word_runs("ab c de", np.int64(2)) == loops.word_runs("ab c de", 2) == ["ab", "de"]
    assert loops.word_runs("ab c de", True) == ["ab", "c", "de"]  # an index: 1
    with pytest.raises(OverflowError):
        loops.word_runs("ab", 2**70)
    with pytest.raises(TypeError, match=r"argument 2 must be dict, not list"):
        loops.unknown_words("ab", [])
    with pytest.raises(TypeError, match=r"argument 2 must be frozenset, not set"):
        loops.stemmed_terms("ab", set(), str)
    with pytest.raises(TypeError, match=r"argument 1 must be bytes, not str"):
        loops.language_scores("ab", *[np.zeros(1)] * 5)
    scores = np.array([1.0, 3.0, 2.0])
    top = loops.softmax_top(scores, np.float32(1.0), 2)  # any __float__, as "d" reads it
    assert [i for i, _ in top] == [1, 2]
    with pytest.raises(TypeError, match="must be real number, not str"):
        loops.softmax_top(scores, "1", 2)
    with pytest.raises(TypeError, match=r"^match\(\) takes exactly 2 arguments \(3 given\)$"):
        loops.TermIndex(["a"], [[(0, 1.0)]], [1.0]).match([0], 1, 2)
    with pytest.raises(TypeError, match=r"^score_articles\(\) argument 12 must be tuple"):
        loops.score_articles(*[None] * 11, [], (), 3)


@needs_build
def test_mean_rows_converts_every_float16_exactly_and_averages_as_numpy() -> None:
    assert loops is not None
    halves = np.arange(65536, dtype=np.uint16).view(np.float16)
    finite = halves[np.isfinite(halves)]
    table = finite.reshape(-1, 4).copy()  # 4 values a row
    out = np.empty(4, np.float32)
    for row in range(len(table)):
        loops.mean_rows(table, [row], out)
        want = table[row].astype(np.float32)
        np.testing.assert_array_equal(out.view(np.uint32), want.view(np.uint32))
    rng = np.random.default_rng(1)
    for _ in range(200):
        ids = rng.integers(0, len(table), size=int(rng.integers(1, 40))).tolist()
        loops.mean_rows(table, ids, out)
        want = table[ids].mean(axis=0, dtype=np.float32)
        np.testing.assert_array_equal(out, want)
    # every infinity and NaN pattern (the branch-free conversion's mask): infinities exact,
    # NaNs with their payload (the division by the count quiets a signalling one, as numpy)
    others = halves[~np.isfinite(halves)].reshape(-1, 4).copy()
    for row in range(len(others)):
        loops.mean_rows(others, [row], out)
        want = others[row].astype(np.float32).view(np.uint32)
        quieted = np.where(np.isnan(others[row]), want | 0x00400000, want)
        np.testing.assert_array_equal(out.view(np.uint32), quieted)
    special = np.array([[np.inf, -np.inf, np.nan, -0.0]], dtype=np.float16)
    loops.mean_rows(special, [0], out)
    assert out[0] == np.inf and out[1] == -np.inf and np.isnan(out[2])
    assert out[3] == 0 and np.signbit(out[3])
    loops.mean_rows(special, [], out)
    assert out.tolist() == [0.0, 0.0, 0.0, 0.0]


@needs_build
def test_softmax_top_ranks_as_numpy_does() -> None:
    assert loops is not None
    rng = np.random.default_rng(2)
    for n in (1, 2, 5, 84, 300):
        for temperature in (0.3, 1.0, 7.5):
            scores = rng.normal(scale=4.0, size=n)
            if n > 3:
                scores[1] = scores[3]  # a tie: the lower index ranks first
            z = scores / temperature
            probs = np.exp(z - z.max())
            probs /= probs.sum()
            order = np.argsort(-probs, kind="stable")[:5]
            got = loops.softmax_top(scores, temperature, 5)
            assert [i for i, _ in got] == order.tolist()
            np.testing.assert_allclose([p for _, p in got], probs[order], rtol=1e-13, atol=0)
    assert len(loops.softmax_top(np.zeros(40), 1.0, 30)) == 16  # at most 16
    with pytest.raises(ValueError, match="temperature"):
        loops.softmax_top(np.zeros(3), 0.0, 2)
    with pytest.raises(ValueError, match="finite"):
        loops.softmax_top(np.array([0.0, np.nan]), 1.0, 2)
    with pytest.raises(ValueError, match="at least one"):
        loops.softmax_top(np.zeros(0), 1.0, 2)
    with pytest.raises(ValueError, match="scores"):
        loops.softmax_top(np.zeros(3, dtype=np.float32), 1.0, 2)


@needs_build
def test_embedding_scores_is_the_numpy_embedding_times_its_coefficients() -> None:
    assert loops is not None
    rng = np.random.default_rng(3)
    table = rng.normal(size=(50, 16)).astype(np.float16)
    coef = rng.normal(size=(16, 7)).astype(np.float32)
    projections: dict[int, bytes] = {}
    for ids in ([3], [4, 4, 9, 0], rng.integers(0, 50, size=30).tolist()):
        mean = table[ids].mean(axis=0, dtype=np.float32)
        unit = mean / float(np.sqrt(mean @ mean))
        want_dense = unit * np.float32(0.7)
        base = rng.normal(size=7)
        scores, dense = base.copy(), np.empty(16, np.float32)
        loops.embedding_scores(table, ids, 0.7, coef, dense, scores, projections)
        np.testing.assert_allclose(dense, want_dense, rtol=1e-6)
        want = base + want_dense.astype(np.float64) @ coef.astype(np.float64)
        np.testing.assert_allclose(scores, want, rtol=0, atol=1e-6)
    assert sorted(projections) == sorted({3, 4, 9, 0, *ids})  # each token's, kept once
    scores, dense = np.ones(7), np.full(16, 5.0, np.float32)
    loops.embedding_scores(table, [], 0.7, coef, dense, scores, {})  # no tokens: none
    assert dense.tolist() == [0.0] * 16 and scores.tolist() == [1.0] * 7
    with pytest.raises(IndexError, match="out of range"):
        loops.embedding_scores(table, [50], 0.7, coef, dense, scores, {})
    with pytest.raises(ValueError, match="one row per value"):
        loops.embedding_scores(table, [1], 0.7, coef[:15], dense, scores, {})
    with pytest.raises(ValueError, match="one row per value"):
        loops.embedding_scores(table, [1], 0.7, coef, dense, np.zeros(6), {})
    with pytest.raises(ValueError, match="dense"):
        loops.embedding_scores(table, [1], 0.7, coef, np.empty(16), scores, {})
    with pytest.raises(TypeError, match="argument 7 must be dict"):
        loops.embedding_scores(table, [1], 0.7, coef, dense, scores, [])
    for foreign in (b"\0" * 8, bytearray(56), 1.0):  # another model's, or not bytes
        with pytest.raises(ValueError, match="bytes of 7 doubles"):
            loops.embedding_scores(table, [1], 0.7, coef, dense, scores, {1: foreign})


@needs_build
@pytest.mark.parametrize("classes", [1, 7, 15, 16, 17, 31, 32, 33, 78])
@pytest.mark.parametrize("width", [1, 2, 5, 64])
def test_embedding_scores_keep_each_tokens_projection_in_row_order_bit_for_bit(
    classes: int, width: int
) -> None:
    """A token's projection is summed a block of columns at a time (the last block read past
    its rows' ends where it can); each column adds the same products in the same order as a
    row at a time, zero factors skipped, so the same doubles, whatever the number of
    classes. The scores add the projections' sum in the ids' order, scaled."""
    assert loops is not None
    rng = np.random.default_rng(classes * 100 + width)
    table = rng.normal(size=(20, width)).astype(np.float16)
    table[:, 1::3] = 0  # zero factors: skipped
    coef = rng.normal(size=(width, classes)).astype(np.float32)
    base = rng.normal(size=classes)
    ids = [1, 7, 7, 12]
    projections: dict[int, bytes] = {}
    scores, dense = base.copy(), np.empty(width, np.float32)
    loops.embedding_scores(table, ids, 0.7, coef, dense, scores, projections)
    assert sorted(projections) == [1, 7, 12]
    for token, kept in projections.items():
        want = np.zeros(classes)
        for factor, row in zip(table[token].astype(np.float32).tolist(), coef, strict=True):
            if factor != 0.0:
                want = want + factor * row.astype(np.float64)  # one rounding per step, as in C
        assert kept == want.tobytes(), token
    total = np.zeros(classes)
    for token in ids:
        total = total + np.frombuffer(projections[token])
    mean = table[ids].mean(axis=0, dtype=np.float32)
    norm = float(np.sqrt(sum(v * v for v in mean.tolist())))
    np.testing.assert_allclose(scores, base + total * (0.7 / (len(ids) * norm)), rtol=1e-12)


@needs_build
def test_embedding_scores_are_the_same_whatever_was_kept() -> None:
    """A kept projection is the one made: the same doubles from an empty dict, one holding
    every token and one holding some; each token's is kept once, as bytes of doubles."""
    assert loops is not None
    rng = np.random.default_rng(11)
    table = rng.normal(size=(40, 32)).astype(np.float16)
    coef = rng.normal(size=(32, 9)).astype(np.float32)
    messages = [rng.integers(0, 40, size=int(rng.integers(1, 15))).tolist() for _ in range(60)]

    def scored(projections: dict[int, bytes]) -> list[bytes]:
        out = []
        for ids in messages:
            scores, dense = np.zeros(9), np.empty(32, np.float32)
            loops.embedding_scores(table, ids, 0.5, coef, dense, scores, projections)
            out.append(scores.tobytes() + dense.tobytes())
        return out

    warm: dict[int, bytes] = {}
    first = scored(warm)
    assert sorted(warm) == sorted({t for ids in messages for t in ids})
    assert all(type(kept) is bytes and len(kept) == 9 * 8 for kept in warm.values())
    assert scored(warm) == first  # every projection kept
    some = {t: p for t, p in warm.items() if t % 3 == 0}
    assert scored(some) == first
    want = []
    for ids in messages:
        mean = table[ids].mean(axis=0, dtype=np.float32)
        dense = mean / float(np.sqrt(mean @ mean)) * np.float32(0.5)
        want.append(dense.astype(np.float64) @ coef.astype(np.float64))
    got = [np.frombuffer(b[: 9 * 8]) for b in first]
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)


@needs_build
def test_posterior_moment_is_numpys_to_rounding() -> None:
    assert loops is not None
    rng = np.random.default_rng(4)
    for d in (1, 4, 25, 70):  # 70: past the stack buffer
        m = rng.normal(size=(d, d))
        a_inv = np.linalg.inv(m @ m.T + np.eye(d))
        theta = rng.normal(size=d)
        row = rng.normal(size=d).tolist()
        x = np.array(row)
        mean, width = loops.posterior_moment(row, a_inv, theta)
        assert mean == pytest.approx(float(x @ theta), rel=1e-12, abs=1e-12)
        assert width == pytest.approx(math.sqrt(float(x @ a_inv @ x)), rel=1e-12)
    negative = -np.eye(2)  # rounding below zero is clipped, as in the Python path
    assert loops.posterior_moment([1.0, 0.0], negative, np.zeros(2)) == (0.0, 0.0)
    with pytest.raises(ValueError, match="values a side"):
        loops.posterior_moment([1.0], np.eye(2), np.zeros(2))
    with pytest.raises(ValueError, match="a_inv"):
        loops.posterior_moment([1.0, 2.0], np.eye(2, dtype=np.float32), np.zeros(2))
    with pytest.raises(TypeError):
        loops.posterior_moment([1.0, "x"], np.eye(2), np.zeros(2))


@needs_build
def test_posterior_moment_adds_each_column_in_row_order() -> None:
    """The width's sums in one order, bit for bit: each column's rows added first to last,
    then the columns first to last (sizes 1 to 13 and two larger: a loop that takes several
    columns a pass, as a faster width might, fails here unless it keeps this order)."""
    assert loops is not None
    rng = np.random.default_rng(12)
    for d in (*range(1, 14), 25, 70):
        for _ in range(5):
            a_inv = rng.normal(size=(d, d)) * 10.0 ** rng.integers(-3, 4, size=(d, d))
            row = (rng.normal(size=d) * 10.0 ** rng.integers(-3, 4, size=d)).tolist()
            quadratic = 0.0
            for j in range(d):
                column = 0.0
                for i in range(d):
                    column += row[i] * float(a_inv[i, j])
                quadratic += column * row[j]
            _, width = loops.posterior_moment(row, a_inv, np.zeros(d))
            assert width == math.sqrt(max(quadratic, 0.0)), d


def _bandit_with_history() -> LinUCB:
    rng = np.random.default_rng(7)
    bandit = LinUCB(features=[f"f{i}" for i in range(6)], alpha=1.0)
    for _ in range(40):
        context = {f"f{i}": float(rng.normal()) for i in range(6)}
        bandit.learn_one(context, str(rng.choice(["a", "b", "c"])), float(rng.random()))
    return bandit


@needs_build
def test_arm_moments_are_the_row_by_row_path() -> None:
    """The offered arms' rows and moments in one call: the doubles of building each row in
    Python and calling posterior_moment on it, for contexts with ints, bools, unknown and
    missing features, and action features for some arms or none."""
    assert loops is not None
    bandit, rng = _bandit_with_history(), np.random.default_rng(11)
    arms = ["a", "b", "c", "never-played"]
    for trial in range(300):
        chosen = rng.choice(6, size=int(rng.integers(0, 7)), replace=False)
        context: dict[str, object] = {f"f{i}": float(rng.normal()) for i in chosen}
        context["not a feature"] = "ignored, not read"
        if trial % 3 == 0:
            context["f0"] = int(rng.integers(-3, 4))
        if trial % 5 == 0:
            context["f1"] = True
        features = {arm: {"f5": float(rng.random()), "f2": 1, "x": []} for arm in arms[: trial % 4]}
        solved = [bandit._solve(arm) for arm in arms]
        got = loops.arm_moments(context, bandit._index, arms, features or None, solved)
        if features:
            rows = bandit._arm_rows(context, arms, features)  # type: ignore[arg-type]
        else:
            rows = [bandit._values(context)] * len(arms)  # type: ignore[arg-type]
        want = [loops.posterior_moment(row, *pair) for row, pair in zip(rows, solved, strict=True)]
        assert got == ([m for m, _ in want], [w for _, w in want])


@needs_build
def test_arm_moments_refuse_and_defer_as_the_python_path() -> None:
    assert loops is not None
    bandit = _bandit_with_history()
    arms = ["a", "b"]
    solved = [bandit._solve(arm) for arm in arms]

    def moments(context: dict, features: dict | None = None) -> object:
        return loops.arm_moments(context, bandit._index, arms, features, solved)

    for bad in (math.nan, math.inf):  # named as _values and _arm_rows name them
        with pytest.raises(ValueError) as native_error:
            moments({"f0": bad})
        with pytest.raises(ValueError) as python_error:
            bandit._values({"f0": bad})
        assert str(native_error.value) == str(python_error.value)
        with pytest.raises(ValueError) as native_error:
            moments({"f0": 1.0}, {"b": {"f3": -bad}})
        with pytest.raises(ValueError) as python_error:
            bandit._arm_rows({"f0": 1.0}, arms, {"b": {"f3": -bad}})
        assert str(native_error.value) == str(python_error.value)
    with pytest.raises(OverflowError):  # float(10**400) raises it too
        moments({"f0": 10**400})
    # what float() reads by running code, or keys that are not str: the Python path's
    for deferred in ({"f0": np.float64(0.5)}, {"f0": "0.5"}, {1: 0.5}):
        assert moments(deferred) is None
    assert moments({"f0": 0.5}, {"a": {"f0": np.float32(2)}}) is None
    assert moments({}, {"a": dict.fromkeys(["f0"], 1.0).items()}) is None  # not a dict
    singular = LinUCB(features=["f0", "f1"], alpha=1.0)  # A = I + an exactly rank-1 Gram
    for _ in range(2):
        singular.learn_one({"f0": 1e10, "f1": 1e10}, "a", 1.0)
    with pytest.raises(ValueError, match="not a finite number"):  # the row's error first
        singular.probabilities({"f0": math.inf}, ["a", "b"])
    context = {"f0": np.float64(0.5), "f4": "0.25"}  # deferred, then read by the Python path
    plain = {"f0": 0.5, "f4": 0.25}
    assert bandit._posterior_moments(context, arms) == tuple(moments(plain))
    assert bandit.probabilities(context, arms) == bandit.probabilities(plain, arms)


@needs_build
def test_term_index_scores_repeats_and_shared_terms() -> None:
    assert loops is not None
    index = loops.TermIndex(
        ["a", "b", "c"], [[(0, 1.0), (1, 2.0)], [(1, 1.0)], [], [(2, 4.0)]], [0.5, 2.0, 1.0, 1.0]
    )
    # term 0 twice (qtf 2): a 2*0.5*1 = 1, b 2*0.5*2 + 1*2*1 = 4; c never matched
    scores, shared = index.match([0, 1, 0], 2)
    assert list(scores.items()) == [("a", 0.25), ("b", 1.0)] and shared == {"b"}
    scores, shared = index.match([1, 0], 1)  # b 2*1 + 0.5*2 = 3, a 0.5: in first-match order
    assert list(scores.items()) == [("b", 1.0), ("a", 0.5 / 3.0)] and shared == {"a", "b"}
    assert index.match([], 1) == ({}, set()) and index.match([2], 1) == ({}, set())
    assert index.match([3], 1) == ({"c": 1.0}, {"c"})
    assert index.match([0], 1) == ({"a": 0.5, "b": 1.0}, {"a", "b"})  # scratch was reset
    with pytest.raises(ValueError, match="out of range"):
        index.match([4], 1)
    with pytest.raises(ValueError, match="doc 3 out of range"):
        loops.TermIndex(["a"], [[(3, 1.0)]], [1.0])
    with pytest.raises(ValueError, match="twice"):
        loops.TermIndex(["a"], [[(0, 1.0), (0, 2.0)]], [1.0])
    with pytest.raises(ValueError, match="one value per term"):
        loops.TermIndex(["a"], [[(0, 1.0)]], [])
    with pytest.raises(TypeError, match="doc_ids"):
        loops.TermIndex([1], [], [])
    with pytest.raises(TypeError):
        loops.TermIndex(["a"], [[(0, "x")]], [1.0])
    with pytest.raises(RuntimeError, match="not initialized"):
        loops.TermIndex.__new__(loops.TermIndex).match([0], 1)


@needs_build
def test_python_code_run_while_reading_numbers_cannot_break_the_tables() -> None:
    # An id's __index__ (or a weight's) may run Python code that changes the containers
    # being read: the loops read snapshots, so they neither overflow nor read freed items.
    assert loops is not None
    vocabulary: dict[str, object] = {}

    class Growing:
        def __index__(self) -> int:
            vocabulary.update({f"k{i}": 0 for i in range(300)})
            return 0

    vocabulary.update({"ab": Growing(), "cd": 1})
    idf, coef = np.ones(2), np.zeros((2, 3), dtype=np.float32)
    scorer = loops.NgramScorer(vocabulary, idf, coef, 2, 2, False, False)  # type: ignore[arg-type]
    assert scorer.lookup("ab") == 0 and scorer.lookup("cd") == 1 and scorer.lookup("k1") is None

    postings: list[list[tuple[object, float]]] = []

    class Shrinking:
        def __index__(self) -> int:
            postings.clear()
            return 0

    postings.extend([[(Shrinking(), 1.0)], [(0, 2.0)]])
    index = loops.TermIndex(["a"], postings, [1.0, 1.0])  # type: ignore[arg-type]
    assert index.match([0, 1], 1) == ({"a": 1.0}, {"a"})
    with pytest.raises(TypeError, match="list of int"):
        index.match([Shrinking()], 1)  # type: ignore[list-item]


@needs_build
def test_a_failed_init_leaves_an_object_that_refuses_to_work() -> None:
    assert loops is not None
    scorer = loops.NgramScorer.__new__(loops.NgramScorer)
    idf, coef = np.ones(2), np.zeros((2, 1), np.float32)
    with pytest.raises(ValueError, match="out of range"):
        scorer.__init__({"a": 0, "b": 5}, idf, coef, 1, 1, False, True)  # type: ignore[misc]
    with pytest.raises(RuntimeError, match="not initialized"):
        scorer.add_scores(["a"], np.zeros(1))
    with pytest.raises(RuntimeError, match="not initialized"):
        scorer.lookup("a")
    with pytest.raises(RuntimeError, match="already initialized"):
        scorer.__init__({"a": 0}, idf, coef, 1, 1, False, True)  # type: ignore[misc]


def test_an_ngram_range_from_zero_is_scored_by_the_python_block() -> None:
    # scikit-learn accepts ngram_range=(0, n) (its empty n-gram is in the vocabulary); the
    # compiled block does not read it, so such a vectorizer keeps the Python block.
    texts = ["where is my card", "my card has not arrived", "top up"]
    vectorizer = TfidfVectorizer(analyzer="word", ngram_range=(0, 2)).fit(texts)
    coef = np.random.default_rng(5).normal(size=(len(vectorizer.vocabulary_), 2))
    scorer = SingleTextScorer([vectorizer], coef.astype(np.float32), np.zeros(2))
    assert not scorer.compiled
    want = np.asarray(vectorizer.transform(texts) @ coef.astype(np.float32).astype(np.float64))
    for text, row in zip(texts, want, strict=True):
        np.testing.assert_allclose(scorer.scores(text), row, rtol=0, atol=1e-9)
