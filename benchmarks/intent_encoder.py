"""Choosing the encoder model's layers and weight on validation rows, with their latency.

``hybrid+minilm`` (models/intent/encoder_hybrid.py) appends the mean-pooled states of
all-MiniLM-L6-v2's first N layers (int8 ONNX, no torch) to the hybrid's TF-IDF ⊕ WordLlama
features. This script fits it on the training part of the stratified 15 % validation split
of the bundled training data (what ``tailorbot train`` holds out; seed 0) for each
``--layers`` × ``--weights`` pair, and reports on the validation rows: accuracy, macro-F1,
and the CPU time of one ``predict_one`` at a time (thread CPU, p50 and p99, after a
warm-up), beside the default ``hybrid`` in the same run. No test rows are read: the chosen
configuration is scored once on test by ``intent_model.py``.

    .venv/bin/python benchmarks/intent_encoder.py
    .venv/bin/python benchmarks/intent_encoder.py --layers 2 6 --weights 1 2 --json
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from _harness import machine
from intent_model import cpu_latency_ms

from tailorbot.models.intent import (
    HybridIntentModel,
    default_dataset,
    metrics_from_predictions,
    stratified_split,
)
from tailorbot.models.intent.encoder_hybrid import EncoderHybridIntentModel


def top_intent_scores(model: Any, texts: list[str], labels: list[str]) -> dict[str, float]:
    """Accuracy and macro-F1 of the top intent (no fallback) on ``texts``."""
    predicted = [model.labels[i] for i in model.predict_proba(texts).argmax(1)]
    metrics = metrics_from_predictions(labels, predicted, [False] * len(labels))
    return {"accuracy": round(metrics.accuracy, 4), "macro_f1": round(metrics.macro_f1, 4)}


def score(model: Any, texts: list[str], labels: list[str]) -> dict[str, float]:
    latency = cpu_latency_ms(model.predict_one, texts)  # as intent_model.py measures it
    return {
        **top_intent_scores(model, texts, labels),
        **{name: round(ms, 3) for name, ms in latency.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", type=int, nargs="+", default=[1, 2, 3, 4, 6])
    parser.add_argument("--weights", type=float, nargs="+", default=[1.0, 2.0])
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    fit, val = stratified_split(default_dataset("train"), 0.15, 0)
    texts, labels = list(val.texts), list(val.labels)
    rows: list[dict[str, Any]] = []
    candidates: list[tuple[str, Any]] = [("hybrid (default)", HybridIntentModel)]
    for layers in args.layers:
        for weight in args.weights:
            candidates.append(
                (
                    f"hybrid+minilm layers={layers} weight={weight:g}",
                    lambda n=layers, w=weight: EncoderHybridIntentModel(
                        encoder_layers=n, encoder_weight=w
                    ),
                )
            )
    for name, make in candidates:
        started = time.process_time()
        model = make().fit(fit.texts, fit.labels)
        row = {"model": name, "fit_cpu_s": round(time.process_time() - started, 1)}
        row.update(score(model, texts, labels))
        rows.append(row)
        if not args.json:
            print(json.dumps(row), flush=True)
    if args.json:
        print(json.dumps({"machine": machine(), "validation_rows": len(texts), "rows": rows}))
    else:
        print(f"# {machine()}; {len(texts)} validation rows")


if __name__ == "__main__":
    main()
