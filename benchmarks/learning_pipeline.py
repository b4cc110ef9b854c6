"""Banking77 through the learning pipeline: k-fold CV, the Optuna search, one test.

Rows: the bundled Banking77 train split + the built-in conversational intents + the bundled
out-of-scope train rows (what ``tailorbot train`` uses without ``--data``); the model is the
served kind (``--model hybrid``, the default, or ``tfidf``). The pipeline splits them
70/15/15 (stratified),
selects hyperparameters by 5-fold CV on train + validation, and touches its test split once.
It runs twice, with the defaults (``--no-search``) and with the search, and reports

* CV mean ± std of the answer score (the selection metric), accuracy and macro-F1;
* the search: trials, pruned trials, seconds, its CV gain over the defaults;
* each run's figures on its test split (15 % of the rows, never seen in selection) and on the
  bundled Banking77 test split + out-of-scope test rows (never seen by either run).

Comparing the two runs on test data is a second look, not model selection: the search chose
on CV alone.

    .venv/bin/python benchmarks/learning_pipeline.py --trials 10 --timeout 420 [--model tfidf]
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from _harness import machine

from tailorbot.models.intent import default_dataset, evaluate_intent_model
from tailorbot.models.pipeline.crossval import fold_metrics
from tailorbot.models.pipeline.trainer import train_intent


def run(rows: list[dict], external: Any, **options: Any) -> dict[str, Any]:
    started = time.perf_counter()
    result = train_intent(rows, source="bundled", **options)
    card = result.card
    model = result.model
    outside = fold_metrics(model, list(external.texts), list(external.labels), 0.25)
    full = evaluate_intent_model(model, external.texts, external.labels)
    return {
        "seconds": round(time.perf_counter() - started, 1),
        "params": card["params"],
        "cv": {k: card["cv"][k] for k in ("answer_score", "accuracy", "macro_f1")},
        "search": card["search"],
        "test_split": card["test"],
        "bundled_test": {**outside, **{k: v for k, v in full.to_dict().items() if v is not None}},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--timeout", type=float, default=420.0)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--model", choices=("hybrid", "tfidf"), default="hybrid")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    train = default_dataset("train")
    external = default_dataset("test")
    rows = [{"text": t, "intent": i} for t, i in zip(train.texts, train.labels, strict=True)]
    report = {
        "machine": machine(),
        "rows": len(rows),
        "model": args.model,
        "defaults": run(rows, external, search=False, k=args.folds, model=args.model),
        "search": run(
            rows, external, search=True, k=args.folds, n_trials=args.trials,
            timeout_s=args.timeout, model=args.model,
        ),
    }  # fmt: skip
    if args.json:
        print(json.dumps(report, indent=2))
        return
    for name in ("defaults", "search"):
        r = report[name]
        print(f"== {name} ({r['seconds']} s): {r['params']}")
        for metric, figure in r["cv"].items():
            print(f"  CV {metric:<14} {figure['mean']:.4f} ± {figure['std']:.4f}")
        if r["search"]:
            print(f"  search {r['search']}")
        t, b = r["test_split"], r["bundled_test"]
        print(f"  test split ({t['n']} rows): accuracy {t['accuracy']:.4f}, "
              f"macro_f1 {t['macro_f1']:.4f}, answer_score {t['answer_score']:.4f}")  # fmt: skip
        print(f"  bundled test ({len(external)} rows): accuracy {b['accuracy']:.4f}, "
              f"in_scope_accuracy {b.get('in_scope_accuracy', float('nan')):.4f}, "
              f"oos_recall {b.get('oos_recall', float('nan')):.4f}, "
              f"answer_score {b['answer_score']:.4f}")  # fmt: skip


if __name__ == "__main__":
    main()
