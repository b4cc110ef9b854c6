"""The collaborative-filtering recommender (item-kNN) through the pipeline.

1. **Time split** of the log's events, 70/15/15 by count: the model is fitted on the oldest
   70 %; the *rows* are the sessions that ended resolved by an article and whose customer had
   an article history before the session began (a basket: articles viewed, found helpful or
   resolved by, less the vetoed), each with the resolving article. Sessions starting in the
   next 15 % validate, those in the newest 15 % test.
2. **Selection on validation** over the model's few hyperparameters (neighbours, shrinkage,
   minimum common users; the defaults first, so a tie keeps them): hit rate@3 of the CF
   ranking of the basket's neighbours (NDCG@3 breaks ties).
3. **Refit** on train + validation with the chosen parameters; **one test** on the newest
   sessions, beside the popularity ranking of the same fitting window as a reference.

The held-out rows are self-contained (basket and answer), so the promotion gate scores the
current version on exactly the same rows (:class:`CFJudge`). The events of a user whose
profile withholds analytics consent are left out first, as from the intent dataset.

>>> def session(user, n, article, hour):
...     at = f"2026-01-01T{hour:02d}:00:00+00:00"
...     return [{"type": "article_viewed", "user_id": user, "session_id": f"{user}{n}",
...              "timestamp": at, "article_id": article},
...             {"type": "resolution", "user_id": user, "session_id": f"{user}{n}",
...              "timestamp": at, "resolved": True, "article_id": article}]
>>> rows = session_rows(session("u1", 0, "a", 1) + session("u1", 1, "b", 2))
>>> [(r["basket"], r["article"]) for r in rows]
[(['a'], 'b')]
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tailorbot.events.codec import event_epoch
from tailorbot.models.pipeline.dataset import consenting
from tailorbot.models.pipeline.judge import Judge
from tailorbot.models.pipeline.trainer import Row, TrainingRun

K = 3
DEFAULTS = {"neighbours": 20, "shrinkage": 10.0, "min_common": 2}
GRID = {"neighbours": (5, 10, 20, 50), "shrinkage": (0.0, 2.0, 10.0, 50.0), "min_common": (1, 2)}
SHARES = (0.70, 0.85)  # ends of the train and validation windows, as shares of the events


def session_rows(events: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Sessions resolved by an article whose user had a basket when the session began;
    ``events`` in event-time order."""
    from tailorbot.models.recommend.item_knn import interactions_from_events

    owned: dict[str, dict[str, float]] = {}
    started: dict[tuple[str, str], dict[str, Any]] = {}
    answer: dict[tuple[str, str], str | None] = {}
    for event in events:
        user, key = event["user_id"], (event["user_id"], event["session_id"])
        if key not in started:
            basket = sorted(a for a, w in owned.get(user, {}).items() if w > 0)
            started[key] = {
                "user_id": user,
                "session_id": key[1],
                "basket": basket,
                "timestamp": event["timestamp"],
                "epoch": event_epoch(dict(event)),
            }
        if event["type"] == "resolution":
            resolved = event.get("resolved") and event.get("article_id")
            answer[key] = str(event["article_id"]) if resolved else None
        for _, article, weight in interactions_from_events([event]):
            mine = owned.setdefault(user, {})
            mine[article] = mine.get(article, 0.0) + weight
    rows = [{**started[key], "article": article} for key, article in answer.items() if article]
    rows = [r for r in rows if r["basket"]]
    rows.sort(key=lambda r: (r["epoch"], r["user_id"], r["session_id"]))
    return rows


def ranked(model: Any, basket: Sequence[str], k: int = K) -> list[str]:
    """The model's top ``k`` articles for a basket (ties by article id)."""
    scores = model.scores(basket)
    return [a for a, _ in sorted(scores.items(), key=lambda item: (-item[1], item[0]))[:k]]


def hit_figures(lists: Sequence[list[str]], rows: Sequence[Row]) -> dict[str, Any]:
    """Hit rate@k and NDCG@k of ranked lists against each row's resolving article."""
    hits = ndcg = 0.0
    for top, row in zip(lists, rows, strict=True):
        if row["article"] in top:
            hits += 1
            ndcg += 1.0 / math.log2(top.index(row["article"]) + 2)
    n = max(1, len(rows))
    return {"hit_rate": hits / n, "ndcg": ndcg / n, "n": len(rows)}


@dataclass(frozen=True)
class CFJudge(Judge):
    kind: str = "item_knn"
    metric: str = "hit_rate"
    higher_is_better: bool = True
    audited: bool = False

    def score(self, model: Any, rows: Sequence[Row]) -> dict[str, Any]:
        return hit_figures([ranked(model, r["basket"]) for r in rows], rows)


def train_cf(
    events: Sequence[Mapping[str, Any]],
    *,
    profiles: Mapping[str, Mapping[str, Any]] | None = None,
    search: bool = True,
    params: Mapping[str, Any] | None = None,
    source: str = "log",
) -> TrainingRun:
    """Steps 1-3 of the module doc on ``events`` (event-time order), less those of the users
    whose profile in ``profiles`` withholds analytics consent. Without ``search``,
    ``params`` (else the defaults) is the only candidate."""
    started = time.perf_counter()
    given = len(events)
    events = consenting(events, profiles)
    if not events:
        why = f"none of the {given} events is of a user who consents to analytics"
        raise ValueError(f"{why if given else 'no events'}: nothing to learn from")
    cuts = [event_epoch(dict(events[max(0, int(len(events) * s) - 1)])) for s in SHARES]
    rows = session_rows(events)
    validation = [r for r in rows if cuts[0] < r["epoch"] <= cuts[1]]
    test = [r for r in rows if r["epoch"] > cuts[1]]
    if not validation or not test:
        raise ValueError(
            f"{len(rows)} sessions resolved by an article after an article history in "
            f"{len(events)} events, {len(validation)} of them in the validation window and "
            f"{len(test)} in the test window: need at least one in each"
        )
    candidates = [{**DEFAULTS, **(params or {})}] if not search else _grid()
    chosen, scores = _select(_fitting(events, cuts[0]), validation, candidates)
    model = _fit(_fitting(events, cuts[1]), chosen)
    tested = CFJudge().score(model, test)
    reference = hit_figures([_popular(_fitting(events, cuts[1]))] * len(test), test)
    tested["popularity_hit_rate"] = reference["hit_rate"]
    card = {
        "model": type(model).__name__,
        "params": chosen,
        "k": K,
        "validation": {"metric": f"hit_rate@{K}", "candidates": len(candidates), **scores},
        "test": tested,
        "metrics": {**tested, "split": "test"},
        "data": {"source": source, "events": len(events), "rows": len(rows), "by_time": True,
                 "splits": {"train": len(rows) - len(validation) - len(test),
                            "validation": len(validation), "test": len(test)},
                 "window": {"first": events[0]["timestamp"], "last": events[-1]["timestamp"]},
                 "train_until": cuts[0], "validation_until": cuts[1]},
        **model.summary(),
        "training": {"seconds": round(time.perf_counter() - started, 2)},
    }  # fmt: skip
    return TrainingRun(model, card, test, frozenset())


def _grid() -> list[dict[str, Any]]:
    names = list(GRID)
    found = [dict(zip(names, values, strict=True)) for values in itertools.product(*GRID.values())]
    return [DEFAULTS, *[p for p in found if p != DEFAULTS]]


def _fitting(events: Sequence[Mapping[str, Any]], until: float) -> list[Mapping[str, Any]]:
    return [e for e in events if event_epoch(dict(e)) <= until]


def _fit(events: Sequence[Mapping[str, Any]], params: Mapping[str, Any]) -> Any:
    from tailorbot.models.recommend.cf_training import train_item_knn

    return train_item_knn(events, **params)


def _select(
    events: Sequence[Mapping[str, Any]], rows: Sequence[Row], candidates: list[dict[str, Any]]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The candidate with the best validation hit rate (then NDCG; the first on a tie)."""
    judge = CFJudge()
    scored = [(judge.score(_fit(events, p), rows), p) for p in candidates]
    order = max(
        range(len(scored)),
        key=lambda i: (scored[i][0]["hit_rate"], scored[i][0]["ndcg"], -i),
    )
    best_scores, best = scored[order]
    defaults = next((s for s, p in scored if p == DEFAULTS), None)
    gain = None if defaults is None else best_scores["hit_rate"] - defaults["hit_rate"]
    return best, {"best": best_scores, "defaults": defaults, "gain_over_defaults": gain}


def _popular(events: Sequence[Mapping[str, Any]]) -> list[str]:
    """The ``K`` articles that resolved the most sessions (the same list for everyone)."""
    counts: dict[str, int] = {}
    for event in events:
        if event["type"] == "resolution" and event.get("resolved") and event.get("article_id"):
            counts[event["article_id"]] = counts.get(event["article_id"], 0) + 1
    return [a for a, _ in sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:K]]
