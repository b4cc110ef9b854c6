"""Collaborative filtering on user × article interactions: item-kNN with shrunk cosine.

Implicit feedback from the event log (``interactions_from_events``): per user and article,
the confidence ``log1p`` of the summed interaction weights (a view 1, a helpful vote 2, a
resolution naming the article 3; an unhelpful vote removes the pair). The similarity of two
articles is the cosine of their user columns, shrunk by the number of users both touched
(Sarwar et al. 2001; shrinkage as in Koren's neighbourhood models)::

    sim(i, j) = cos(i, j) * n_ij / (n_ij + shrinkage)

and each article keeps its ``neighbours`` most similar ones. A user's score for an article is
the sum of its similarities to the articles in the user's basket (articles they viewed, found
helpful or were resolved by), clipped to 1. Fitting is a sparse matrix product (scipy);
scoring walks the basket's neighbour lists: microseconds per request.

>>> knn = ItemKNN(neighbours=5, shrinkage=1.0, min_common=1).fit([
...     ("u1", "a", 1.0), ("u1", "b", 1.0), ("u2", "a", 1.0), ("u2", "b", 1.0),
...     ("u3", "a", 1.0), ("u3", "c", 1.0)])
>>> sorted(knn.neighbours_of("a"))
['b', 'c']
>>> scores = knn.scores(["a"])
>>> scores["b"] > scores["c"] > 0
True
>>> list(knn.most_similar(["a"], 1))
['b']
"""

from __future__ import annotations

import heapq
import math
import operator
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import numpy as np

from tailorbot.compiled import native

# Interaction weights of implicit feedback (an unhelpful vote removes the pair).
VIEW_WEIGHT = 1.0
HELPFUL_WEIGHT = 2.0
RESOLVED_WEIGHT = 3.0
_SCORE_THEN_ID = operator.itemgetter(1, 0)  # (score, id) of an (id, score) item, in C


class ItemKNN:
    """Item-based collaborative filtering.

    Parameters
    ----------
    neighbours
        How many most similar articles each article keeps.
    shrinkage
        Pseudo-count shrinking a similarity resting on few common users towards 0.
    min_common
        Pairs with fewer common users are not neighbours.
    """

    def __init__(self, neighbours: int = 20, shrinkage: float = 10.0, min_common: int = 2) -> None:
        if neighbours < 1 or shrinkage < 0 or min_common < 1:
            raise ValueError("ItemKNN needs neighbours >= 1, shrinkage >= 0 and min_common >= 1")
        self.neighbours = neighbours
        self.shrinkage = shrinkage
        self.min_common = min_common
        self._neighbours: dict[str, dict[str, float]] = {}
        self._n_users = 0
        self._n_pairs = 0

    def fit(self, interactions: Iterable[tuple[str, str, float]]) -> ItemKNN:
        """Learn from ``(user, article, weight)`` triples (weights of a pair are summed; a
        pair with a non-positive sum is dropped)."""
        from scipy import sparse

        summed: dict[tuple[str, str], float] = {}
        for user, article, weight in interactions:
            summed[(user, article)] = summed.get((user, article), 0.0) + float(weight)
        pairs = {key: math.log1p(w) for key, w in summed.items() if w > 0}
        users = {u: i for i, u in enumerate(sorted({u for u, _ in pairs}))}
        items = sorted({a for _, a in pairs})
        index = {a: j for j, a in enumerate(items)}
        self._n_users, self._n_pairs = len(users), len(pairs)
        self._neighbours = {}
        if not pairs:
            return self
        rows = np.fromiter((users[u] for u, _ in pairs), dtype=np.int64, count=len(pairs))
        cols = np.fromiter((index[a] for _, a in pairs), dtype=np.int64, count=len(pairs))
        values = np.fromiter(pairs.values(), dtype=float, count=len(pairs))
        shape = (len(users), len(items))
        x = sparse.csr_matrix((values, (rows, cols)), shape=shape)
        binary = sparse.csr_matrix((np.ones_like(values), (rows, cols)), shape=shape)
        dot = (x.T @ x).toarray()
        common = (binary.T @ binary).toarray()
        norms = np.sqrt(np.diag(dot))
        with np.errstate(divide="ignore", invalid="ignore"):
            cosine = np.nan_to_num(dot / np.outer(norms, norms))
            shrink = np.nan_to_num(common / (common + self.shrinkage))
        sim = cosine * shrink
        np.fill_diagonal(sim, 0.0)
        sim[common < self.min_common] = 0.0
        for j, article in enumerate(items):
            row = sim[j]
            top = [k for k in np.argsort(-row, kind="stable")[: self.neighbours] if row[k] > 0]
            if top:
                self._neighbours[article] = {items[k]: round(float(row[k]), 6) for k in top}
        return self

    def neighbours_of(self, article: str) -> dict[str, float]:
        return dict(self._neighbours.get(article, {}))

    def scores(self, basket: Iterable[str]) -> dict[str, float]:
        """Per article similar to the basket: the summed similarity, clipped to 1 (basket
        articles themselves are scored too, by their similarity to the rest)."""
        out: dict[str, float] = {}
        for owned in set(basket):
            for article, sim in self._neighbours.get(owned, {}).items():
                out[article] = out.get(article, 0.0) + sim
        return {a: min(1.0, s) for a, s in out.items()}

    def most_similar(self, basket: Iterable[str], n: int) -> dict[str, float]:
        """The ``n`` best of :meth:`scores`, best first (equal scores: the larger id
        first), in one compiled call where the extension is built."""
        loops = native()
        found = loops.top_similar(self._neighbours, basket, n) if loops is not None else None
        return found if found is not None else self.most_similar_in_python(basket, n)

    def most_similar_in_python(self, basket: Iterable[str], n: int) -> dict[str, float]:
        """:meth:`most_similar` in Python: the reference the compiled ``top_similar``
        (csrc/similar.c) is tested against, and the path for what it leaves to Python."""
        return dict(heapq.nlargest(n, self.scores(basket).items(), key=_SCORE_THEN_ID))

    def best_link(self, article: str, basket: Iterable[str]) -> str | None:
        """The basket article most similar to ``article`` (for the reason text)."""
        found = [(self._neighbours.get(b, {}).get(article, 0.0), b) for b in sorted(set(basket))]
        best = max(found, default=(0.0, None))
        return best[1] if best[0] > 0 else None

    def summary(self) -> dict[str, Any]:
        return {
            "users": self._n_users,
            "interactions": self._n_pairs,
            "articles_with_neighbours": len(self._neighbours),
        }


def interactions_from_events(
    events: Iterable[Mapping[str, Any]],
) -> Iterator[tuple[str, str, float]]:
    """``(user, article, weight)`` of the implicit feedback in decoded events; an unhelpful
    vote yields a large negative weight, so the pair is dropped."""
    for event in events:
        kind, article = event.get("type"), event.get("article_id")
        if not article:
            continue
        user = event["user_id"]
        if kind == "article_viewed":
            yield user, article, VIEW_WEIGHT
        elif kind == "article_feedback":
            yield user, article, HELPFUL_WEIGHT if event.get("helpful") else -1e9
        elif kind == "resolution" and event.get("resolved"):
            yield user, article, RESOLVED_WEIGHT
