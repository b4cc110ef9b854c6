"""Text relevance of a customer message to knowledge-base articles: Okapi BM25.

Documents are tokenized once at fit time (lower-cased words, a stop list of function words
and chat fillers, a light
suffix stemmer so that "arrived" meets "arrival"); a query only walks the posting lists of
its own terms, so scoring costs O(matching postings), not O(articles).

>>> index = BM25Index().fit([
...     ("a1", "Where is my card? Card delivery usually takes a week."),
...     ("a2", "Exchange rates are set daily."),
... ])
>>> scores = index.scores("my card has not arrived yet")
>>> sorted(scores)
['a1']
>>> index.normalized("exchange rate")["a2"]
1.0
"""

from __future__ import annotations

import functools
import math
import re
from collections import Counter
from collections.abc import Iterable
from types import ModuleType
from typing import Any

from tailorbot.compiled import native

_WORD = re.compile(r"[a-z0-9]+")

_STOP_TEXT = """
    a about an and are as at be been but by can could did do does doing for from had has
    have how i if in into is it its me my myself no not of on or our please so than that the
    their them then there these they this to too us was we were what when where which who
    why will with would you your yours am im ive id hi hello hey thanks thank t s d ll re ve
    m don doesn didn isn wasn hasn haven won cant
"""
# Fillers of chat messages: words that say how the customer feels about the question, not what
# it is about. One of them shared with an article is coincidence, never relevance
# ("my card hasn't arrived yet" is not about an article that says "not yet").
_FILLER_TEXT = """
    yet still already just really also even ever again anymore now today soon
    want wants wanted wanna need needs needed like would should could might may must shall
    get gets got getting gotten know knew think thought tell told let lets
    help helps helped please pls plz ok okay sure yes yeah oh well hmm
    hasnt havent hadnt isnt arent wasnt werent dont doesnt didnt wont wouldnt shouldnt
    couldnt cannot youre theyre thats whats ill ive id im
    something anything nothing someone anyone somebody anybody thing things stuff
    very much some any every
"""
FILLER_WORDS = frozenset(_FILLER_TEXT.split())
STOP_WORDS = frozenset(_STOP_TEXT.split()) | FILLER_WORDS

# Longest first; one suffix at most is stripped, then a trailing "e" (so "charge"/"charges"
# and "decline"/"declined" meet).
_SUFFIXES = ("ational", "ation", "ness", "ment", "ing", "ies", "ied", "es", "ed", "al", "ly", "s")
_MIN_STEM = 3


@functools.lru_cache(maxsize=65536)  # a vocabulary is small; messages repeat its words
def stem(word: str) -> str:
    """A deliberately small suffix stripper (no dependency; good enough for short FAQs).

    >>> [stem(w) for w in ("arrived", "arrival", "cards", "charges", "charge", "pending")]
    ['arriv', 'arriv', 'card', 'charg', 'charg', 'pend']
    """
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= _MIN_STEM:
            word = word[: -len(suffix)]
            if suffix in ("ies", "ied"):
                word += "y"
            break
    if word.endswith("e") and len(word) > _MIN_STEM:
        word = word[:-1]
    return word


def article_document(article: Any, title_boost: int) -> str:
    """An article's indexed text: the title (``title_boost`` times), body, troubleshooting
    steps, tags."""
    parts = [article.title] * max(1, title_boost) + [article.body, *article.steps, *article.tags]
    return " ".join(parts)


def tokenize(text: str) -> list[str]:
    """Stemmed content words of ``text`` (underscores split words: "card_arrival").

    >>> tokenize("My card_arrival hasn't ARRIVED yet")
    ['card', 'arriv', 'arriv']
    """
    loops = native()
    if loops is not None and type(text) is str:  # the same words, without the regex engine
        return loops.stemmed_terms(text, STOP_WORDS, stem)
    return terms_in_python(text)


def terms_in_python(text: str) -> list[str]:
    """:func:`tokenize`'s Python path, the reference its compiled one is tested against."""
    return [stem(w) for w in _WORD.findall(text.lower().replace("_", " ")) if w not in STOP_WORDS]


WORD_EDGES = ".,!?;:'\"()[]"  # what message_words strips off each piece for its word


def terms_and_words(text: str) -> tuple[list[str], list[tuple[str, str]]]:
    """``(tokenize(text), message_words(text))`` in one compiled pass where the extension is
    built: a recommendation reads both of its message.

    >>> terms_and_words("My card_arrival hasn't ARRIVED yet")
    (['card', 'arriv', 'arriv'], [('card', 'card'), ('arrival', 'arriv'), ('arrived', 'arriv')])
    """
    loops = native()
    if loops is not None and type(text) is str:
        found: tuple[list[str], list[tuple[str, str]]] = loops.message_terms(text, STOP_WORDS, stem)
        return found
    return terms_in_python(text), message_words(text)


def message_words(message: str) -> list[tuple[str, str]]:
    """Distinct content words of the message with their stems, in order of appearance: each
    piece between whitespace (and underscores) stripped of its punctuation, when it is one
    term (the recommender's reasons name them: "your message mentions card, arrived").
    :func:`terms_and_words`'s Python path, the reference its compiled one is tested against.

    >>> message_words("Where is my card? My CARD, not the pin")
    [('card', 'card'), ('pin', 'pin')]
    """
    # A word's stem depends on the word alone, so dict() keeps each word once, where it first
    # appears, with the stem it always has; the loop runs in C over cached answers.
    pieces = message.lower().replace("_", " ").split()
    return list(dict(filter(None, map(_content_word, pieces))).items())


@functools.lru_cache(maxsize=65536)  # messages repeat their words
def _content_word(piece: str) -> tuple[str, str] | None:
    """A piece of a message split at whitespace as a word (its punctuation around it
    stripped) and its stem, when it is one content word (None: a stop word, or several
    tokens)."""
    word = piece.strip(WORD_EDGES)
    tokens = tokenize(word)
    return (word, tokens[0]) if len(tokens) == 1 else None


class BM25Index:
    """Okapi BM25 over a fixed set of documents.

    Parameters
    ----------
    k1
        Term-frequency saturation.
    b
        Length normalisation (0: none, 1: full).
    """

    def __init__(self, k1: float = 1.5, b: float = 0.75) -> None:
        if k1 < 0 or not 0.0 <= b <= 1.0:
            raise ValueError("BM25 needs k1 >= 0 and 0 <= b <= 1")
        self.k1 = k1
        self.b = b
        self._postings: dict[str, list[tuple[str, float]]] = {}
        self._idf: dict[str, float] = {}
        self._doc_ids: list[str] = []
        self._compiled: tuple[dict[str, int], Any] | None = None  # built on first match()

    def fit(self, documents: Iterable[tuple[str, str]]) -> BM25Index:
        """Index ``(doc_id, text)`` pairs, replacing whatever was indexed before."""
        term_counts: dict[str, Counter[str]] = {}
        for doc_id, text in documents:
            if doc_id in term_counts:
                raise ValueError(f"duplicate document id {doc_id!r}")
            term_counts[doc_id] = Counter(tokenize(text))
        self._doc_ids = list(term_counts)
        n_docs = len(term_counts)
        lengths = {d: sum(c.values()) for d, c in term_counts.items()}
        avg_len = (sum(lengths.values()) / n_docs) if n_docs else 0.0
        doc_freq: Counter[str] = Counter()
        for counts in term_counts.values():
            doc_freq.update(counts.keys())
        # Lucene's idf: always positive, so a term in most documents still counts a little.
        self._idf = {
            t: math.log(1.0 + (n_docs - df + 0.5) / (df + 0.5)) for t, df in doc_freq.items()
        }
        postings: dict[str, list[tuple[str, float]]] = {}
        for doc_id, counts in term_counts.items():
            norm = self.k1 * (1.0 - self.b + self.b * lengths[doc_id] / avg_len) if avg_len else 0
            for term, tf in counts.items():
                # The document half of BM25 is fixed at fit time; a query only multiplies idf.
                weight = tf * (self.k1 + 1.0) / (tf + norm)
                postings.setdefault(term, []).append((doc_id, weight))
        self._postings = postings
        self._compiled = None
        return self

    @property
    def doc_ids(self) -> list[str]:
        return list(self._doc_ids)

    def scores(self, query: str, terms: list[str] | None = None) -> dict[str, float]:
        """BM25 score of every document sharing a term with ``query`` (others score 0);
        ``terms``: the query's :func:`tokenize`, when the caller has it already."""
        out: dict[str, float] = {}
        for term, qtf in Counter(tokenize(query) if terms is None else terms).items():
            idf = self._idf.get(term)
            if idf is None:
                continue
            for doc_id, weight in self._postings[term]:
                out[doc_id] = out.get(doc_id, 0.0) + qtf * idf * weight
        return out

    def match(
        self, query: str, terms: list[str] | None, need: int
    ) -> tuple[dict[str, float], set[str]]:
        """:meth:`normalized`, and the matched documents that hold at least ``need`` of the
        query's distinct terms. In C where the extension is built (the same doubles: the
        same operations in the same order), else from :meth:`normalized`."""
        terms = tokenize(query) if terms is None else terms
        loops = native()
        if loops is None:
            scores = self.normalized(query, terms)
            held = Counter(d for t in set(terms) for d, _ in self._postings.get(t, ()))
            return scores, {d for d in scores if held[d] >= need}
        if self._compiled is None:
            self._compiled = self._compile(loops)
        index, compiled = self._compiled
        return compiled.match([index[t] for t in terms if t in index], need)

    def _compile(self, loops: ModuleType) -> tuple[dict[str, int], Any]:
        """The postings as a :class:`tailorbot._native.TermIndex`, and its term ids."""
        doc = {d: i for i, d in enumerate(self._doc_ids)}
        terms = list(self._postings)
        postings = [[(doc[d], w) for d, w in self._postings[t]] for t in terms]
        compiled = loops.TermIndex(self._doc_ids, postings, [self._idf[t] for t in terms])
        return {t: i for i, t in enumerate(terms)}, compiled

    def normalized(self, query: str, terms: list[str] | None = None) -> dict[str, float]:
        """Scores divided by the best one, so the top match is 1.0 and weights stay comparable."""
        raw = self.scores(query, terms)
        best = max(raw.values(), default=0.0)
        if best <= 0.0:
            return {}
        return {d: s / best for d, s in raw.items()}
