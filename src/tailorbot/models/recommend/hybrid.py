"""The hybrid article recommender: text, intent, other customers and the user's own history.

An article's score is a weighted sum of signals, each in a small fixed range:

===========================  =====  ===========================================================
signal                       range  what it is
===========================  =====  ===========================================================
``text``                     0..1   BM25 of the message against title, body, steps and tags,
                                    over the best (an off-intent article needs real evidence)
``intent``                   0..1   the intent confidence when the article serves the intent
``segment_resolution_rate``  0..1   smoothed share of this intent's issues it resolved for
                                    customers of the user's tier and segment
``segment_helpfulness``      -1..1  net helpful votes per reader (same groups, this intent)
``cooccurrence``             0..1   link to articles that already helped this user (counters)
``item_knn``                 0..1   collaborative filtering: similarity (item-kNN trained on
                                    the log, :mod:`.item_knn`) to the articles the user used
``popularity``               0..1   how often it helped the user's tier and segment
``history``                  0..1   it resolved the user's issue of this intent before (1), or
                                    the user found it helpful and it is on topic (0.5)
===========================  =====  ===========================================================

Hard rules come before scores: an article the user marked unhelpful is never offered again,
and an article is offered only to the tiers and languages of its audience. An article whose
score is not positive is not offered (the list may be shorter than ``k``). Ties are broken
by article id, so the ranking is deterministic.

>>> from tailorbot.kb.model import Article, KnowledgeBase
>>> kb = KnowledgeBase([
...     Article(id="kb-card", title="Where is my card?", body="Cards arrive within a week.",
...             intents=["card_arrival"]),
...     Article(id="kb-pin", title="Change your PIN", body="At any cash machine.",
...             intents=["change_pin"])])
>>> best = HybridRecommender(kb).recommend(None, "my card has not arrived", "card_arrival", 0.93)[0]
>>> best.article_id, best.reasons
('kb-card', ['matches intent card_arrival (0.93)', 'your message mentions card, arrived'])
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

from tailorbot.compiled import native
from tailorbot.models.recommend.base import (
    Recommendation,
    Recommender,
    UserContext,
)
from tailorbot.models.recommend.collaborative import CollaborativeStats
from tailorbot.models.recommend.evidence import Evidence
from tailorbot.models.recommend.item_knn import ItemKNN
from tailorbot.models.recommend.reasons import ReasonWriter
from tailorbot.models.recommend.text import BM25Index, article_document, terms_and_words

DEFAULT_WEIGHTS: dict[str, float] = {
    "text": 1.0,
    "intent": 1.5,
    "segment_resolution_rate": 1.5,
    "segment_helpfulness": 0.5,
    "cooccurrence": 0.3,
    "item_knn": 0.5,
    "popularity": 0.3,
    "history": 1.0,
}
# The control policy: no per-user and no collaborative signal.
INTENT_ONLY_WEIGHTS: dict[str, float] = {
    **dict.fromkeys(DEFAULT_WEIGHTS, 0.0),
    "text": 1.0,
    "intent": 1.5,
}

# The order _weighted writes an article's signals in, and so the order they are summed in
# (score_articles of the compiled loops takes the weights in this order too).
SIGNAL_ORDER = (
    "text",
    "intent",
    "history",
    "segment_resolution_rate",
    "segment_helpfulness",
    "cooccurrence",
    "item_knn",
    "popularity",
)

# Text-only candidates: the best this many text matches (see _candidates).
TEXT_CANDIDATES = 20
# An article that does not serve the predicted intent gets a text signal only when it shares
# at least this many distinct content words with the message (fewer when the message has
# fewer): one shared word is coincidence, not evidence enough to outrank the intent's own.
MIN_SHARED_TERMS = 2
_NONE: frozenset[str] = frozenset()
# tuple.__new__ read once: its lookup on the type is never specialized (three a decision)
_new_tuple = tuple.__new__


class HybridRecommender(Recommender):
    """Ranks a knowledge base's articles for one message and one user.

    Parameters
    ----------
    kb
        The :class:`tailorbot.kb.KnowledgeBase`; its text index is built here, once.
    weights
        Weight of each signal (missing names take :data:`DEFAULT_WEIGHTS`).
    stats
        Collaborative statistics (:class:`CollaborativeStats`); None: no collaborative,
        co-occurrence or popularity signal. Replace ``stats`` to refresh it.
    title_boost
        How many times the title counts in the text index.
    cf
        The collaborative-filtering model (:class:`ItemKNN`, trained by ``tailorbot
        train-recs``); None: no ``item_knn`` signal. Replace ``cf`` to refresh it.
    """

    def __init__(
        self,
        kb: Any,
        weights: Mapping[str, float] | None = None,
        stats: CollaborativeStats | None = None,
        title_boost: int = 2,
        cf: ItemKNN | None = None,
    ) -> None:
        unknown = set(weights or {}) - set(DEFAULT_WEIGHTS)
        if unknown:
            raise ValueError(
                f"unknown recommender weights {sorted(unknown)}; expected {sorted(DEFAULT_WEIGHTS)}"
            )
        self.kb = kb
        self.weights = weights
        self.stats = stats
        self.title_boost = title_boost
        self.cf = cf
        self._weights = {**DEFAULT_WEIGHTS, **(weights or {})}
        self._weight_row = tuple(self._weights[name] for name in SIGNAL_ORDER)
        self._on_intent: Mapping[str, frozenset[str]] = kb.article_ids_by_intent
        self._articles: Mapping[str, Any] = kb.articles_by_id  # kb.article() without the call
        self._for_all = frozenset(  # articles whose audience is everyone
            a.id for a in kb.articles if not a.audience.tiers and not a.audience.languages
        )
        self._index = BM25Index().fit((a.id, article_document(a, title_boost)) for a in kb.articles)
        self._writer = ReasonWriter(kb)

    @classmethod
    def intent_only(cls, kb: Any) -> HybridRecommender:
        """The non-personalized baseline: intent match and text relevance only."""
        return cls(kb, weights=INTENT_ONLY_WEIGHTS)

    def recommend(
        self,
        user_view: Mapping[str, Any] | None,
        message: str,
        intent: str | None,
        intent_confidence: float,
        k: int = 3,
        *,
        tier: str | None = None,
        language: str | None = None,
    ) -> list[Recommendation]:
        """The best ``k`` articles, best first.

        ``tier`` and ``language`` (default: the view's) pick the audience (``Audience.matches``
        of the KB: an unknown tier or language does not filter).
        """
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        if not 0.0 <= intent_confidence <= 1.0 or math.isnan(intent_confidence):
            raise ValueError(f"intent_confidence must be within [0, 1], got {intent_confidence}")
        user = UserContext.from_view(user_view)
        tier = tier or user.tier
        language = language or user.language
        evidence = Evidence.gather(self.stats, self.cf, user, intent, self._weights)
        terms, words = terms_and_words(message)  # words: the reasons' (below)
        matches: Mapping[str, float] = {}
        shared: set[str] = set()
        if self._weights["text"]:
            need = min(MIN_SHARED_TERMS, len(set(terms)))
            matches, shared = self._index.match(message, terms, need)
        # The ids of the intent's articles: what `intent in article.intents` reads, without
        # reading a pydantic model's attribute for every candidate.
        on_intent = self._on_intent.get(intent, _NONE) if intent else _NONE
        # The text matches whose score counts: on-intent articles always, off-intent ones
        # only when they share enough of the message's words (``shared``: those that do,
        # all of them matches). Set operations walk the smaller side in C: an intent has
        # few articles, while almost every article shares some word with a message.
        relevant = shared.union(matches.keys() & on_intent)
        candidates = self._candidates(user, matches, relevant, intent, on_intent, evidence)
        resolved = user.resolved_by_intent.get(intent, ()) if intent else ()
        loops = native()
        ranked = None
        if loops is not None:  # the loop and the cut below in C (None: left to Python)
            ranked = loops.score_articles(
                candidates, self._articles, user.unhelpful, self._for_all, tier, language,
                matches, relevant, on_intent, intent_confidence,
                (resolved, user.helpful) if user.personalized else None,
                (evidence.rates, evidence.links, evidence.similar, evidence.popularity),
                self._weight_row, k,
            )  # fmt: skip
        if ranked is None:
            ranked = []
            articles = self._articles
            text = {a: matches[a] for a in candidates if a in relevant}
            for article_id in candidates:
                article = articles.get(article_id)
                if article is None or article_id in user.unhelpful:
                    continue
                if article_id not in self._for_all and not article.audience.matches(tier, language):
                    continue
                weighted = self._weighted(
                    article_id, user, resolved, text, on_intent, intent_confidence, evidence
                )
                score = 0.0  # added in the signals' order, on every Python version
                for product in weighted.values():
                    score += product
                if score > 0.0:  # nothing speaks for it: a shorter list beats a random filler
                    ranked.append((-score, article_id, article, weighted))
            # Candidate ids are unique: tuples order by (-score, id) and never compare
            # further. sorted()[:k] is what heapq.nsmallest(k) returns.
            ranked.sort()
        worded: dict[str, str] = {}  # the reasons' texts every article of this answer shares
        reasons, cf = self._writer.reasons, self.cf
        # every field, in their order: tuple.__new__ skips the generated __new__'s keywords
        return [
            _new_tuple(Recommendation, (
                article_id,
                article.title,
                round(-negative, 6),
                reasons(
                    article_id, weighted, user, words, intent, intent_confidence, evidence, cf,
                    worded,
                ),
                weighted,
            ))
            for negative, article_id, article, weighted in ranked[:k]
        ]  # fmt: skip

    def _candidates(
        self,
        user: UserContext,
        matches: Mapping[str, float],
        relevant: set[str],
        intent: str | None,
        on_intent: frozenset[str],
        evidence: Evidence,
    ) -> set[str]:
        """The best relevant text matches and the articles with a signal about this issue
        (``on_intent``: the intent's own, collaborative rates, co-occurrence, the user's
        history).

        Almost every article shares some word with a message, and popularity covers every
        article a group ever used: scoring all of them would cost a millisecond per decision,
        and an article in the text tail or with popularity alone never reaches the top k.
        """
        # relevant holds only matches, walked in matches' order: a stable sort keeps equal
        # scores in that order, so a tie at the cut picks what heapq.nlargest picked (it is
        # sorted()[:n]; its heap, in Python, cost three times this sort in C).
        best_text: Iterable[str] = relevant
        if len(relevant) > TEXT_CANDIDATES:
            in_order = [a for a in matches if a in relevant]
            in_order.sort(key=matches.__getitem__, reverse=True)
            best_text = in_order[:TEXT_CANDIDATES]
        found = set(best_text).union(evidence.rates, evidence.links, evidence.similar, on_intent)
        if user.personalized:
            found.update(user.helpful, user.resolved_by_intent.get(intent or "", ()))
        return found

    def _weighted(
        self,
        article_id: str,
        user: UserContext,
        resolved: tuple[str, ...],
        text: Mapping[str, float],
        on_intent: frozenset[str],
        confidence: float,
        evidence: Evidence,
    ) -> dict[str, float]:
        """Every signal of one article times its weight, in the order of the table above, the
        zero products left out (numbers only: reasons are worded for the top ``k`` alone).
        ``resolved``: the articles that resolved this intent for the user before. One dict,
        written in place: this runs for every candidate."""
        weights = self._weights
        out: dict[str, float] = {}
        topical = False  # a text or an intent signal, whatever its weight
        found_text = text.get(article_id)
        if found_text is not None:
            topical = True
            if product := weights["text"] * found_text:
                out["text"] = product
        if article_id in on_intent:
            topical = True
            if product := weights["intent"] * confidence:
                out["intent"] = product
        if user.personalized:
            # It resolved this issue before (1), or it was helpful and is on this message's
            # topic (0.5: helpful for this topic, not for any old issue).
            history = None
            if article_id in resolved:
                history = 1.0
            elif article_id in user.helpful and topical:
                history = 0.5
            if history is not None and (product := weights["history"] * history):
                out["history"] = product
        found = evidence.rates.get(article_id)
        if found is not None:
            if product := weights["segment_resolution_rate"] * found.resolution.rate:
                out["segment_resolution_rate"] = product
            if product := weights["segment_helpfulness"] * found.feedback.rate:
                out["segment_helpfulness"] = product
        link = evidence.links.get(article_id)
        if link is not None and (product := weights["cooccurrence"] * link[0]):
            out["cooccurrence"] = product
        similar = evidence.similar.get(article_id)
        if similar is not None and (product := weights["item_knn"] * similar):
            out["item_knn"] = product
        popular = evidence.popularity.get(article_id)
        if popular is not None and (product := weights["popularity"] * popular):
            out["popularity"] = product
        return out
