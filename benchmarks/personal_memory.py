"""Per-request cost of the per-customer memory and the CF signal on the decision path.

* ``feature_view`` of a user with 0, 20, 100 and 500 rated contacts (as many ratings,
  sessions and outcomes; the memory's share, one pass over the outcome list, is
  ``memory_view``; at most 200 outcomes are retained);
* ``action_features`` for a template's three variants;
* ``LinUCB.select`` over three variants, without and with action features;
* ``HybridRecommender.recommend`` (k=3, demo KB, a personalized view with a basket of five
  articles), without and with an item-kNN model fitted on a synthetic log of ``--users``
  users (each used 2-8 articles).

    .venv/bin/python benchmarks/personal_memory.py
    .venv/bin/python benchmarks/personal_memory.py --calls 5000 --json
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from tailorbot.features.context import (
    AttributeContext,
    action_features,
    decision_context,
    feature_names,
)
from tailorbot.features.memory import memory_view
from tailorbot.features.state import apply_event, new_state
from tailorbot.features.view import feature_view
from tailorbot.kb import default_kb_dir, load_kb
from tailorbot.models.bandit import LinUCB
from tailorbot.models.recommend import HybridRecommender
from tailorbot.models.recommend.item_knn import ItemKNN
from tailorbot.store.base import FeatureRecord

T0 = 1_767_225_600.0
VARIANTS = ["concise", "step_by_step", "empathetic"]


def timed(fn: Callable[[], Any], calls: int) -> dict[str, float]:
    samples = []
    for _ in range(calls):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1e6)
    samples.sort()
    return {
        "p50_us": round(statistics.median(samples), 1),
        "p99_us": round(samples[int(0.99 * (len(samples) - 1))], 1),
    }


def user_with_outcomes(n: int) -> FeatureRecord:
    state = new_state()
    for i in range(n):
        event = {
            "type": "rating",
            "event_id": f"r{i}",
            "user_id": "u",
            "session_id": f"s{i}",
            "timestamp": f"2026-01-{1 + (i * 29) // max(n, 1):02d}T10:00:{i % 60:02d}Z",
            "score": 1 + i % 5,
            "metadata": {"variant": VARIANTS[i % 3], "article": f"kb-{i % 7}"},
        }
        apply_event(state, event, None)
    return FeatureRecord("u", state, 0, 0, 0.0, 0.0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--calls", type=int, default=3000)
    ap.add_argument("--users", type=int, default=3000)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    now = T0 + 30 * 86400
    out: dict[str, Any] = {}
    for n in (0, 20, 100, 500):
        record = user_with_outcomes(n)
        out[f"feature_view, {n} outcomes"] = timed(
            lambda record=record: feature_view(record, None, now), args.calls
        )
        out[f"  of which memory_view, {n} outcomes"] = timed(
            lambda record=record: memory_view(record.state, now), args.calls
        )
    view = feature_view(user_with_outcomes(100), None, now)
    out["action_features, 3 variants"] = timed(lambda: action_features(view, VARIANTS), args.calls)
    attributes = AttributeContext(())
    bandit = LinUCB(feature_names(attributes), alpha=1.0, seed=0)
    context = decision_context(view, None, attributes)
    arm_features = action_features(view, VARIANTS)
    out["LinUCB.select, context only"] = timed(lambda: bandit.select(context, VARIANTS), args.calls)
    out["LinUCB.select, with action features"] = timed(
        lambda: bandit.select(context, VARIANTS, arm_features=arm_features), args.calls
    )
    kb = load_kb(default_kb_dir())
    ids = [a.id for a in kb.articles]
    rng = np.random.default_rng(0)
    pairs = [
        (f"u{u}", ids[int(j)], 1.0)
        for u in range(args.users)
        for j in rng.choice(len(ids), size=int(rng.integers(2, 9)), replace=False)
    ]
    started = time.perf_counter()
    knn = ItemKNN().fit(pairs)
    out["ItemKNN.fit, interactions"] = {
        "interactions": len(pairs),
        "seconds": round(time.perf_counter() - started, 3),
    }
    rec_view = {**view, "articles_viewed": ids[:3], "articles_helpful": ids[3:5]}
    message = "my card has still not arrived"
    for name, cf in (("without CF", None), ("with item-kNN", knn)):
        recommender = HybridRecommender(kb, cf=cf)
        out[f"recommend k=3, {name}"] = timed(
            lambda r=recommender: r.recommend(rec_view, message, "card_arrival", 0.9), args.calls
        )
    if args.json:
        print(json.dumps(out))
        return
    for name, figures in out.items():
        print(f"{name:<42} {figures}")


if __name__ == "__main__":
    main()
