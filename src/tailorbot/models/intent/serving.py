"""The TF-IDF blocks' decision scores for one message, without scipy (the serving path).

A block's contribution to the scores is linear in its coefficient rows ``W``::

    sum_g tf_g * idf_g * W[g] / sqrt(sum_g (tf_g * idf_g) ** 2)

over the message's distinct n-grams ``g`` with count ``c_g`` (``tf_g = 1 + ln c_g`` with
sublinear tf, else ``c_g``). ``char_wb`` n-grams never cross a word, so per word ``w`` the
sums over its n-grams (repeats included) are kept once: ``u_w = sum idf_g * W[g]`` and
``q_w = sum idf_g ** 2``. A message then costs one gather of its words' ``u_w`` rows instead
of one row per n-gram, and only the n-grams it holds more than once (``c_g > 1``) need a
correction: the numerator loses ``(c_g - tf_g) * idf_g * W[g]`` and the squared norm
``(c_g - tf_g ** 2) * idf_g ** 2``. Other analyzers (the word n-grams: a score row per
distinct n-gram, few per message) run as scikit-learn builds them. The numbers are the batch
path's (``TfidfVectorizer.transform`` times the coefficients) up to float64 rounding (tested):
with sublinear tf, a word a message repeats c times costs about c**2 ulps in the correction
(c sums added, then all but 1 + ln c taken back), ~1e-11 at the longest message accepted.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from types import ModuleType

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer

from tailorbot.compiled import native
from tailorbot.models.intent.row_cache import RowCache

WORD_CACHE = 20_000  # words whose char n-gram sums are kept (~0.7 kB each at 84 intents)
C_WORD_CACHE = 8_192  # the compiled block's (its sums, ids and key: ~0.8 kB a word)


class SingleTextScorer:
    """Intercept plus the TF-IDF blocks' scores of one text.

    ``vectorizers`` are fitted, in column order; ``coef_t`` holds their coefficient rows
    first (feature-major, ``(n_features, n_classes)``), anything after them is not read here.
    ``compiled=False`` serves through the Python blocks even where the extension is built.
    """

    def __init__(
        self,
        vectorizers: Sequence[TfidfVectorizer],
        coef_t: np.ndarray,
        intercept: np.ndarray,
        compiled: bool = True,
    ) -> None:
        self._coef_t = coef_t
        self._intercept = intercept
        self._blocks: list[_Block] = []
        loops = native() if compiled else None
        offset = 0
        for vectorizer in vectorizers:
            if vectorizer.norm != "l2" or not vectorizer.use_idf or vectorizer.binary:
                raise ValueError("only l2-normalized, idf-weighted, non-binary TF-IDF is supported")
            end = offset + len(vectorizer.vocabulary_)
            coef = coef_t[offset:end]
            block: _Block
            if loops is not None and _compilable(vectorizer):
                block = _CompiledBlock(vectorizer, coef, loops)
            elif _per_word(vectorizer):
                block = _WordGramBlock(vectorizer, coef, offset)
            else:
                block = _NgramBlock(vectorizer, coef, offset)
            self._blocks.append(block)
            offset = end

    @property
    def compiled(self) -> bool:
        """Whether any block runs in the compiled loops."""
        return any(isinstance(block, _CompiledBlock) for block in self._blocks)

    def scores(self, text: str) -> np.ndarray:
        """Decision scores ``(n_classes,)``, float64: intercept plus every TF-IDF block."""
        rows: list[int] = []
        weights: list[float] = []
        scores = self._intercept.copy()
        for block in self._blocks:
            block.add_terms(text, scores, rows, weights)
        if rows:
            scores += np.asarray(weights) @ self._coef_t[rows]
        return scores


class _CompiledBlock:
    """A ``char_wb`` or plain word block in C: the analyzer's text handling here, the
    n-grams' lookup and weighted rows in :class:`tailorbot._native.NgramScorer`."""

    def __init__(self, vectorizer: TfidfVectorizer, coef: np.ndarray, loops: ModuleType) -> None:
        low, high = vectorizer.ngram_range
        self._units = _units(vectorizer, loops)
        self._scorer = loops.NgramScorer(
            vectorizer.vocabulary_,
            np.ascontiguousarray(vectorizer.idf_, dtype=np.float64),
            np.ascontiguousarray(coef, dtype=np.float32),
            low,
            high,
            bool(vectorizer.sublinear_tf),
            _per_word(vectorizer),
            # char_wb: each word's sums kept, as _WordGramBlock keeps them (the rows of a
            # message's n-grams, touched one by one, fell out of the CPU caches between
            # decisions: the block cost several times more there than in a loop)
            word_cache=C_WORD_CACHE,
        )

    def add_terms(
        self, text: str, scores: np.ndarray, rows: list[int], weights: list[float]
    ) -> None:
        self._scorer.add_scores(self._units(text), scores)


class _NgramBlock:
    """Any analyzer: each distinct known n-gram adds its weighted coefficient row."""

    def __init__(self, vectorizer: TfidfVectorizer, coef: np.ndarray, offset: int) -> None:
        self._analyze = vectorizer.build_analyzer()
        self._vocabulary: dict[str, int] = vectorizer.vocabulary_
        self._idf: list[float] = np.asarray(vectorizer.idf_, dtype=np.float64).tolist()
        self._sublinear = bool(vectorizer.sublinear_tf)
        self._offset = offset

    def add_terms(
        self, text: str, scores: np.ndarray, rows: list[int], weights: list[float]
    ) -> None:
        known = [j for j in map(self._vocabulary.get, self._analyze(text)) if j is not None]
        if not known:
            return
        idf = self._idf
        if len(set(known)) == len(known):  # the usual case: every count is 1, so tf is 1
            values = [idf[j] for j in known]
        else:
            counts = Counter(known)  # keys in order of first occurrence
            known = list(counts)
            values = [_tf(c, self._sublinear) * idf[j] for j, c in counts.items()]
        norm = math.hypot(*values)
        offset = self._offset
        rows.extend([j + offset for j in known])
        weights.extend([v / norm for v in values])


class _WordGramBlock:
    """``char_wb`` n-grams: per-word sums of rows, kept, plus the repeated n-grams' fix."""

    def __init__(self, vectorizer: TfidfVectorizer, coef: np.ndarray, offset: int) -> None:
        self._vocabulary: dict[str, int] = vectorizer.vocabulary_
        self._ngrams: Callable[[str], Iterable[str]] = vectorizer._char_wb_ngrams
        self._units = _units(vectorizer)
        self._idf_array = np.asarray(vectorizer.idf_, dtype=np.float64)
        self._idf: list[float] = self._idf_array.tolist()
        self._sublinear = bool(vectorizer.sublinear_tf)
        self._coef = coef
        self._offset = offset
        self._words: RowCache[str, tuple[np.ndarray, float]] = RowCache(
            WORD_CACHE, coef.shape[1], np.float64, self._word_sums
        )

    def _word_sums(self, word: str, row: np.ndarray) -> tuple[np.ndarray, float]:
        """Fills ``row`` with ``u_w``; the entry is the word's n-gram ids and ``q_w``."""
        ids = np.fromiter(
            (j for j in map(self._vocabulary.get, self._ngrams(word)) if j is not None),
            dtype=np.intp,
        )
        idf = self._idf_array[ids]
        row[:] = idf @ self._coef[ids]
        return ids, float(idf @ idf)

    def add_terms(
        self, text: str, scores: np.ndarray, rows: list[int], weights: list[float]
    ) -> None:
        words = self._units(text)
        if not words:
            return
        entries, sums = self._words.gather(words)
        squared = sum([q for _, q in entries])
        ids = np.concatenate([i for i, _ in entries]) if len(entries) > 1 else entries[0][0]
        ordered = np.sort(ids)
        repeated = ordered[1:] == ordered[:-1]
        fixes: list[tuple[int, float]] = []
        if repeated.any():  # n-gram j held c times: each extra occurrence is listed once
            idf, offset = self._idf, self._offset
            for j, extra in Counter(ordered[1:][repeated].tolist()).items():
                c = extra + 1
                tf = _tf(c, self._sublinear)
                squared += (tf * tf - c) * idf[j] * idf[j]
                fixes.append((j + offset, (tf - c) * idf[j]))
        if squared <= 0:  # no known n-gram: the block is all zeros
            return
        norm = math.sqrt(squared)
        for row, fix in fixes:
            rows.append(row)
            weights.append(fix / norm)
        summed: np.ndarray = sums.sum(axis=0)
        summed /= norm
        scores += summed


_Block = _CompiledBlock | _NgramBlock | _WordGramBlock


def _tf(count: int, sublinear: bool) -> float:
    return 1.0 + math.log(count) if sublinear else float(count)


def _units(
    vectorizer: TfidfVectorizer, loops: ModuleType | None = None
) -> Callable[[str], list[str]]:
    """What the vectorizer cuts a text's n-grams from, by its own rules: the words of a
    ``char_wb`` one (its lower-casing, then its whitespace rule), else the tokens of its
    preprocessor and tokenizer. With the compiled ``loops``, a word pattern of
    :data:`WORD_RUNS` is cut without the regex engine (``word_runs``: the same tokens)."""
    if _per_word(vectorizer):
        # scikit-learn squeezes each run of whitespace to one space, then splits at
        # whitespace: the words str.split() finds alone (its whitespace is the regex's \s)
        lower = bool(vectorizer.lowercase)
        return lambda text: (text.lower() if lower else text).split()
    min_len = WORD_RUNS.get(vectorizer.token_pattern)
    plain = vectorizer.tokenizer is None and vectorizer.preprocessor is None
    runs = getattr(loops, "word_runs", None)  # None: not built, or an older build
    if runs is not None and min_len is not None and plain and not vectorizer.strip_accents:
        lower = bool(vectorizer.lowercase)
        return lambda text: runs(text.lower() if lower else text, min_len)
    preprocess, tokenize = vectorizer.build_preprocessor(), vectorizer.build_tokenizer()
    return lambda text: tokenize(preprocess(text))


# Word patterns whose tokens are the maximal runs of word characters (``\w``) at least so
# long: scikit-learn's default, and the one that keeps one-letter words.
WORD_RUNS = {r"(?u)\b\w\w+\b": 2, r"\b\w\w+\b": 2, r"(?u)\b\w+\b": 1, r"\b\w+\b": 1}


def _compilable(vectorizer: TfidfVectorizer) -> bool:
    """Whether the compiled block reads the vectorizer's n-grams: ``char_wb`` or plain word
    ones, none of length 0 (scikit-learn accepts a range from 0: its empty n-gram)."""
    return (_per_word(vectorizer) or _plain_words(vectorizer)) and vectorizer.ngram_range[0] >= 1


def _plain_words(vectorizer: TfidfVectorizer) -> bool:
    """Whether the vectorizer's n-grams are word ones of its own tokenizer, unfiltered."""
    return (
        vectorizer.analyzer == "word"
        and vectorizer.tokenizer is None
        and vectorizer.stop_words is None
        and vectorizer.input == "content"
    )


def _per_word(vectorizer: TfidfVectorizer) -> bool:
    """Whether the vectorizer's n-grams are ``char_wb`` ones of the plain analyzer."""
    return (
        vectorizer.analyzer == "char_wb"
        and vectorizer.preprocessor is None
        and not vectorizer.strip_accents
        and vectorizer.input == "content"
    )
