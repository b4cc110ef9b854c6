"""Intent model figures: train time, test quality, fallback behaviour, single-query latency.

Trains the default model on the bundled Banking77 train split + the bundled out-of-scope
train rows (exactly what ``tailorbot train`` does without ``--data``), then reports

* train time (split, fit, calibrate, refit on all rows);
* on the Banking77 test split: accuracy and macro-F1 (the published figure to compare with,
  ~93 % for fine-tuned BERT), plus how often the fallback fires there;
* on Banking77 test + the out-of-scope test rows: in_scope_accuracy, oos_recall,
  oos_precision (definitions in ``tailorbot.models.intent.evaluation``);
* ``predict_one`` latency over every test query, one call at a time (time.perf_counter),
  after a warm-up pass: p50, p99, max, plus the same percentiles in thread CPU time. With
  ``--sklearn`` also the latency of the same prediction through scikit-learn's
  ``transform`` (the batch path called with one text).

    .venv/bin/python benchmarks/intent_model.py
    .venv/bin/python benchmarks/intent_model.py --json --sklearn
"""

from __future__ import annotations

import argparse
import gc
import json
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from _harness import machine

from tailorbot.models.intent import (
    bundled_dataset,
    default_dataset,
    evaluate_intent_model,
    train_intent_model,
)


def latency_ms(predict: Callable[[str], object], texts: list[str], rounds: int) -> dict[str, float]:
    """Per-call wall time (perf_counter) and CPU time of this thread (thread_time).

    On a busy shared machine the wall-clock tail includes time spent waiting for a core;
    the CPU-time tail is what the code itself costs.
    """
    for text in texts[:200]:
        predict(text)  # warm-up: lazy analyzers, caches
    wall, cpu = [], []
    gc.collect()
    for _ in range(rounds):
        for text in texts:
            started, started_cpu = time.perf_counter(), time.thread_time()
            predict(text)
            cpu.append(time.thread_time() - started_cpu)
            wall.append(time.perf_counter() - started)
    wall_ms, cpu_ms = np.asarray(wall) * 1e3, np.asarray(cpu) * 1e3
    return {
        "queries": len(wall_ms),
        "p50_ms": float(np.percentile(wall_ms, 50)),
        "p99_ms": float(np.percentile(wall_ms, 99)),
        "max_ms": float(wall_ms.max()),
        "mean_ms": float(wall_ms.mean()),
        "cpu_p50_ms": float(np.percentile(cpu_ms, 50)),
        "cpu_p99_ms": float(np.percentile(cpu_ms, 99)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rounds", type=int, default=1, help="passes over the test queries")
    parser.add_argument("--sklearn", action="store_true", help="also time the sklearn path")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()

    train = default_dataset("train")
    started = time.perf_counter()
    trained = train_intent_model(train, seed=args.seed)
    train_s = time.perf_counter() - started
    model = trained.model

    banking = bundled_dataset("banking77", "test")
    with_oos = default_dataset("test")
    b77 = evaluate_intent_model(model, banking.texts, banking.labels)
    mixed = evaluate_intent_model(model, with_oos.texts, with_oos.labels)
    texts = list(with_oos.texts)
    result: dict[str, Any] = {
        "machine": machine(),
        "train_rows": len(train),
        "train_s": round(train_s, 2),
        "thresholds": {k: trained.metadata["thresholds"][k] for k in ("threshold", "margin")},
        "temperature": round(model.temperature, 4),
        "banking77_test": {
            "rows": b77.n,
            "accuracy": b77.accuracy,
            "macro_f1": b77.macro_f1,
            "fallback_rate": b77.fallback_rate,
        },
        "banking77_plus_oos_test": {
            "rows": mixed.n,
            "out_of_scope_rows": mixed.n_out_of_scope,
            **mixed.to_dict(),
            "fallback_rate": mixed.fallback_rate,
        },
        "predict_one": latency_ms(model.predict_one, texts, args.rounds),
    }
    if args.sklearn:
        result["predict_proba_one_text"] = latency_ms(
            lambda text: model.predict_proba([text]), texts, args.rounds
        )
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"machine: {result['machine']}")
    print(f"train: {len(train)} rows in {train_s:.1f} s; fallback {result['thresholds']}")
    print(
        f"Banking77 test ({b77.n} rows): accuracy {b77.accuracy:.4f}, macro-F1 {b77.macro_f1:.4f}, "
        f"fallback fires on {b77.fallback_rate:.1%}"
    )
    print(
        f"Banking77 + OOS test ({mixed.n} rows, {mixed.n_out_of_scope} OOS): "
        + ", ".join(f"{k} {v:.4f}" for k, v in mixed.to_dict().items() if v is not None)
    )
    for name in ("predict_one", "predict_proba_one_text"):
        if name in result:
            lat = result[name]
            print(
                f"{name}: {lat['queries']} queries, p50 {lat['p50_ms']:.3f} ms, "
                f"p99 {lat['p99_ms']:.3f} ms, max {lat['max_ms']:.3f} ms "
                f"(CPU time: p50 {lat['cpu_p50_ms']:.3f} ms, p99 {lat['cpu_p99_ms']:.3f} ms)"
            )


if __name__ == "__main__":
    main()
