"""Why an article was recommended: its signals that mattered, worded, strongest first.

A signal is named when its weighted contribution reaches :data:`REASON_MIN` (either sign).
Texts every article of one answer shares (the intent, popularity) are worded once per answer,
into its ``worded`` dict; an evidence object's numbers once while the statistics stand.

>>> from tailorbot.kb.model import Article, KnowledgeBase
>>> from tailorbot.models.recommend.base import UserContext
>>> from tailorbot.models.recommend.evidence import Evidence
>>> from tailorbot.models.recommend.text import terms_and_words
>>> kb = KnowledgeBase([Article(id="kb-card", title="Where is my card?",
...                             body="Cards arrive within a week.", intents=["card_arrival"])])
>>> _, words = terms_and_words("my card has not arrived")
>>> ReasonWriter(kb).reasons("kb-card", {"intent": 1.4, "text": 0.6, "popularity": 0.01},
...                          UserContext(), words, "card_arrival", 0.93, Evidence(), None, {})
['matches intent card_arrival (0.93)', 'your message mentions card, arrived']
"""

from __future__ import annotations

import operator
from collections.abc import Mapping
from typing import Any

from tailorbot.compiled import native
from tailorbot.models.recommend.base import UserContext
from tailorbot.models.recommend.collaborative import ALL, ArticleEvidence
from tailorbot.models.recommend.evidence import Evidence
from tailorbot.models.recommend.item_knn import ItemKNN
from tailorbot.models.recommend.text import article_document, tokenize

# A signal is named among the reasons when its weighted contribution reaches this.
REASON_MIN = 0.1
MENTIONED_WORDS = 4  # the message's words a text reason names at most
WORDED_MAX = 4096  # evidence objects whose worded texts a writer remembers
_NONE: frozenset[str] = frozenset()
_FIRST = operator.itemgetter(0)


class ReasonWriter:
    """Words the reasons of a knowledge base's recommended articles (one per recommender).

    Parameters
    ----------
    kb
        The :class:`tailorbot.kb.KnowledgeBase`: each article's terms are found here, once.
    """

    def __init__(self, kb: Any) -> None:
        self.kb = kb
        self._terms = {a.id: frozenset(tokenize(article_document(a, 1))) for a in kb.articles}
        # _evidence_texts's: (id of an evidence object, intent) -> (it, its two texts)
        self._worded: dict[tuple[int, str | None], tuple[ArticleEvidence, str | None, str | None]]
        self._worded = {}

    def reasons(
        self,
        article_id: str,
        weighted: Mapping[str, float],
        user: UserContext,
        words: list[tuple[str, str]],
        intent: str | None,
        confidence: float,
        evidence: Evidence,
        cf: ItemKNN | None,
        worded: dict[str, str],
    ) -> list[str]:
        """The reasons of one article: ``weighted`` its signals times their weights,
        ``words`` the message's (word, term) pairs (text.terms_and_words), ``cf`` the
        recommender's item-kNN model, ``worded`` the answer's shared texts. In one compiled
        call where the extension is built (None from it: a value it leaves to Python)."""
        terms = self._terms.get(article_id, _NONE)
        extra = (article_id, user, intent, confidence, evidence, cf, worded)
        loops = native()
        if loops is not None:
            found = loops.article_reasons(
                weighted, terms, words, worded, self.reason_text, extra, REASON_MIN,
                MENTIONED_WORDS,
            )  # fmt: skip
            if found is not None:
                return found
        return self.reasons_in_python(weighted, terms, words, worded, extra)

    def reasons_in_python(
        self,
        weighted: Mapping[str, float],
        terms: frozenset[str],
        words: list[tuple[str, str]],
        worded: dict[str, str],
        extra: tuple[Any, ...],
    ) -> list[str]:
        """:meth:`reasons` in Python: the reference the compiled ``article_reasons``
        (csrc/reasons.c) is tested against. ``terms``: the article's; ``extra``: what
        :meth:`reason_text` takes after a signal's name."""
        # One pass over the signals in their order (hybrid.SIGNAL_ORDER), each that mattered
        # worded on the spot; a sort by strength that keeps that order for ties.
        reasons: list[tuple[float, str]] = []
        for name, value in weighted.items():
            strength = abs(value)
            if not strength >= REASON_MIN:
                continue
            text: str | None
            if name == "text":
                matched: list[str] = []
                for word, stemmed in words:
                    if stemmed in terms:
                        matched.append(word)
                        if len(matched) == MENTIONED_WORDS:
                            break
                text = "your message mentions " + ", ".join(matched) if matched else None
            else:
                text = worded.get(name)
                if text is None:
                    text = self.reason_text(name, *extra)
            if text is not None:
                reasons.append((-strength, text))
        if len(reasons) > 1:
            reasons.sort(key=_FIRST)  # stable: equal contributions keep the signals' order
        return [text for _, text in reasons]

    def reason_text(
        self,
        name: str,
        article_id: str,
        user: UserContext,
        intent: str | None,
        confidence: float,
        evidence: Evidence,
        cf: ItemKNN | None,
        worded: dict[str, str],
    ) -> str | None:
        """The reason of one signal other than text (None: nothing to say); a text every
        article of the answer shares goes into ``worded`` under the signal's name."""
        if name == "intent":
            text = worded["intent"] = f"matches intent {intent} ({confidence:.2f})"
            return text
        if name == "history":
            if intent and article_id in user.resolved_by_intent.get(intent, ()):
                return f"it resolved your {intent} issue before"
            return "you found it helpful before"
        if name == "segment_resolution_rate" or name == "segment_helpfulness":
            found = evidence.rates.get(article_id)
            if found is None:
                return None
            resolved, helpful = self._evidence_texts(found, intent)
            return resolved if name == "segment_resolution_rate" else helpful
        if name == "cooccurrence":
            link = evidence.links.get(article_id)
            if link is None:
                return None
            partner = self.kb.article(link[1])
            title = partner.title if partner is not None else link[1]
            return f'helped customers who also found "{title}" helpful'
        if name == "item_knn":
            partner_id = cf.best_link(article_id, user.basket()) if cf is not None else None
            partner = self.kb.article(partner_id) if partner_id else None
            if partner is None:
                return None
            return f'customers who used "{partner.title}" also used it'
        if name == "popularity":
            groups = user.cohorts()
            text = worded["popularity"] = f"popular with {who(groups[0] if groups else ALL)}"
            return text
        return None

    def _evidence_texts(
        self, found: ArticleEvidence, intent: str | None
    ) -> tuple[str | None, str | None]:
        """The worded resolution rate and helpfulness of one article's evidence (None:
        nothing to say). Remembered per evidence object: the statistics share one evidence
        map per intent and groups with every decision until they change (a rebuild carries
        the unchanged ones), and wording its numbers was a fifth of the reasons' cost. Kept
        with the object itself, so an id reused by another object never reads an old text."""
        key = (id(found), intent)
        hit = self._worded.get(key)
        if hit is not None and hit[0] is found:
            return hit[1], hit[2]
        rate, votes = found.resolution, found.feedback
        resolved = helpful = None
        if rate.hits > 0 and rate.trials > 0:
            share = f"{rate.hits / rate.trials:.0%} ({rate.hits:g} of {rate.trials:g})"
            resolved = f"resolved {share} of {who(rate.group)}' {intent} issues"
        if votes.hits > 0:
            helpful = f"{who(votes.group)} found it helpful ({votes.hits:g} net votes)"
        elif votes.hits < 0:
            helpful = f"{who(votes.group)} found it unhelpful"
        if len(self._worded) >= WORDED_MAX:  # bounded: intents x groups x articles
            self._worded.clear()
        self._worded[key] = (found, resolved, helpful)
        return resolved, helpful


def who(group: tuple[str, str]) -> str:
    """A group of customers, worded."""
    kind, value = group
    if kind in ("tier", "segment"):
        return f"similar {value.replace('_', ' ')} customers"
    return "all customers"
