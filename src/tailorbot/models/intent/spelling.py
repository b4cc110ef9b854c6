"""Typo correction against the training vocabulary (SymSpell-style delete index).

A word the training texts never contain is replaced by the most frequent training word
within optimal-string-alignment distance ``max_distance`` (a swap of two neighbouring letters
counts 1; among equally close, equally frequent words, the alphabetically first), found
through an index of every vocabulary word with up to ``max_distance`` letters deleted: two
words within distance d share a form with at most d letters deleted from each (two
substitutions need two deletions on both sides: ``xqrd`` and ``aord`` meet at ``rd``). Short
words (under
``min_length``) and words with digits are left alone, because there a single edit turns one
real word into another; so are words longer than ``MAX_WORD_LENGTH`` (no real word is; a
5,000-letter "word" would cost 5,000 deletions on the serving path). The index is rebuilt
from the word counts after unpickling, so the model file only carries the counts.

>>> corrector = TypoCorrector().fit(["how do I change my pin", "what is my pin number"])
>>> corrector.correct("how do i chnage my pin numbr")
'how do i change my pin number'
>>> corrector.expand("chnage my pin")
'chnage my pin change'
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

from tailorbot.compiled import native

_WORD = re.compile(r"[a-z]+|[^a-z]+")
MAX_WORD_LENGTH = 30


class TypoCorrector:
    """Replaces out-of-vocabulary words by their closest frequent in-vocabulary word.

    Parameters
    ----------
    max_distance
        Largest optimal-string-alignment distance corrected (1 or 2).
    min_length
        Shorter words are never corrected.
    """

    def __init__(self, max_distance: int = 1, min_length: int = 4) -> None:
        if max_distance not in (1, 2):
            raise ValueError(f"max_distance must be 1 or 2, got {max_distance}")
        self.max_distance = max_distance
        self.min_length = min_length
        self._counts: dict[str, int] = {}
        self._index: dict[str, list[str]] | None = None  # deletion form -> words; lazily built
        self._cache: dict[str, str] = {}

    def fit(self, texts: Iterable[str]) -> TypoCorrector:
        counts: Counter[str] = Counter()
        for text in texts:
            counts.update(w for w in _WORD.findall(text.lower()) if w.isalpha())
        self._counts = dict(counts)
        self._index = None
        self._cache = {}
        return self

    def correct(self, text: str) -> str:
        """``text`` lower-cased, each unknown word replaced by its correction (if any)."""
        parts = _WORD.findall(text.lower())
        return "".join(self.correct_word(p) if p.isalpha() else p for p in parts)

    def expand(self, text: str) -> str:
        """``text`` followed by the corrections of its unknown words (``text`` itself when
        nothing was corrected): the original wording keeps its features, the corrected
        words add theirs."""
        known = self._counts  # most words are: no call for them (correct_word's first test)
        compiled = self._compiled()
        if compiled is not None:  # the same words in one C call
            unknown = compiled(text.lower(), known)
        else:
            unknown = [w for w in _WORD.findall(text.lower()) if w not in known and w.isalpha()]
        fixes = [fixed for word in unknown if (fixed := self.correct_word(word)) != word]
        return f"{text} {' '.join(fixes)}" if fixes else text

    def _compiled(self) -> Callable[[str, dict[str, int]], list[str]] | None:
        """``_native.unknown_words``, looked up once (None: not built, or an older build).
        Not pickled: a model file must load where the extension is missing."""
        found: Any = self.__dict__.get("_unknown_words")
        if found is None:  # new, or unpickled
            found = self._unknown_words = getattr(native(), "unknown_words", False)
        return found or None

    def correct_word(self, word: str) -> str:
        if word in self._counts or not self.min_length <= len(word) <= MAX_WORD_LENGTH:
            return word
        cached = self._cache.get(word)
        if cached is None:
            cached = self._cache[word] = self._closest(word)
            if len(self._cache) > 100_000:  # unbounded inputs: keep memory bounded
                self._cache.clear()
        return cached

    def _closest(self, word: str) -> str:
        index = self._built()
        candidates: set[str] = set(index.get(word, ()))
        for form in _deletions(word, self.max_distance):
            if form in self._counts:
                candidates.add(form)
            candidates.update(index.get(form, ()))
        # Ties on distance and count go to the alphabetically first word: the candidates
        # come out of a set, whose order changes with PYTHONHASHSEED, and two server
        # processes must correct a word the same way.
        best, best_key = word, (self.max_distance + 1, 0, "")
        for candidate in candidates:
            distance = _osa_distance(word, candidate)
            key = (distance, -self._counts[candidate], candidate)
            if distance <= self.max_distance and key < best_key:
                best, best_key = candidate, key
        return best

    def _built(self) -> dict[str, list[str]]:
        if self._index is None:
            index: dict[str, list[str]] = {}
            for word in self._counts:
                if len(word) >= self.min_length - self.max_distance:
                    for form in _deletions(word, self.max_distance):
                        index.setdefault(form, []).append(word)
            self._index = index
        return self._index

    def __getstate__(self) -> dict[str, Any]:
        state = {**self.__dict__, "_index": None, "_cache": {}}
        state.pop("_unknown_words", None)
        return state


def _deletions(word: str, depth: int) -> set[str]:
    """Every form of ``word`` with 1 to ``depth`` letters deleted."""
    forms: set[str] = set()
    frontier = {word}
    for _ in range(depth):
        frontier = {w[:i] + w[i + 1 :] for w in frontier for i in range(len(w))}
        forms |= frontier
    return forms


def _osa_distance(a: str, b: str) -> int:
    """Optimal string alignment distance (Levenshtein plus adjacent transpositions)."""
    previous2: list[int] = []
    previous = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        current = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cost = 0 if a[i - 1] == b[j - 1] else 1
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                current[j] = min(current[j], previous2[j - 2] + 1)
        previous2, previous = previous, current
    return previous[len(b)]
