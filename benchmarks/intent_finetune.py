"""Experiment: does a supervised fine-tune of the static embedding table reach the target?

The issue's target is Banking77 test >= 94.5 % at single-query CPU p99 <= 2 ms. The default
model (TF-IDF n-grams + WordLlama mean embeddings, one linear SVM) scores 92.9 %. This
script tries the cheapest idea that could close the gap without a transformer at serve
time: fine-tune the WordLlama token table (32,000 x 256) with a classification head on the
training rows (model2vec-style: mean of token rows, L2-normalized, a scaled linear or MLP
head, cross-entropy), then

* ``tuned``: the tuned table and its head alone;
* ``hybrid+tuned table``: the default hybrid SVM over TF-IDF ⊕ the *tuned* embeddings;
* ``hybrid ⊕ tuned head``: late fusion, ``log p_hybrid + w * log p_tuned`` with ``w`` chosen
  on validation.

Everything is chosen on the stratified 15 % validation split of the training data (the
one ``tailorbot train`` uses); ``--test`` then refits the chosen configuration on all the
training rows and reports Banking77 test once. Serving would need no torch: the tuned
table and the head are plain arrays. torch is needed to *train* only:
``pip install torch==2.13.0`` (the CPU wheel).

    nice -n 10 .venv/bin/python benchmarks/intent_finetune.py            # validation grid
    nice -n 10 .venv/bin/python benchmarks/intent_finetune.py --test \\
        --epochs 6 --hidden 0 --weight 1.0                                  # test, once
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from tailorbot.models.intent import (
    HybridIntentModel,
    bundled_dataset,
    default_dataset,
    metrics_from_predictions,
    stratified_split,
)
from tailorbot.models.intent.static_embeddings import WordLlamaEmbeddings


def token_ids(texts: Sequence[str]) -> list[list[int]]:
    _, tokenizer = WordLlamaEmbeddings()._loaded()
    return [e.ids or [0] for e in tokenizer.encode_batch(list(texts))]


def fine_tune(
    texts: Sequence[str],
    labels: Sequence[str],
    classes: Sequence[str],
    *,
    epochs: int,
    hidden: int,
    lr: float,
    seed: int,
    eval_texts: Sequence[str] | None = None,
    eval_labels: Sequence[str] | None = None,
) -> tuple[np.ndarray, Any, list[float]]:
    """(tuned table float32, the head as a numpy function, validation accuracy per epoch)."""
    import torch

    torch.manual_seed(seed)
    table, _ = WordLlamaEmbeddings()._loaded()
    index = {c: i for i, c in enumerate(classes)}
    ids = token_ids(texts)
    y = torch.tensor([index[label] for label in labels])
    embedding = torch.nn.EmbeddingBag.from_pretrained(
        torch.tensor(table.astype(np.float32)), freeze=False, mode="mean"
    )
    width = table.shape[1]
    head: torch.nn.Module = (
        torch.nn.Linear(width, len(classes))
        if hidden == 0
        else torch.nn.Sequential(
            torch.nn.Linear(width, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, len(classes))
        )
    )
    scale = torch.nn.Parameter(torch.tensor(10.0))  # a unit vector needs a scale for softmax
    optimizer = torch.optim.Adam(
        [
            {"params": embedding.parameters(), "lr": lr},
            {"params": [*head.parameters(), scale], "lr": 1e-2},
        ]
    )

    def forward(batch: list[list[int]]) -> torch.Tensor:
        flat = torch.tensor([t for row in batch for t in row])
        offsets = torch.tensor(np.cumsum([0] + [len(r) for r in batch[:-1]]))
        pooled = torch.nn.functional.normalize(embedding(flat, offsets), dim=1)
        return head(pooled * scale)

    history = []
    eval_ids = token_ids(eval_texts) if eval_texts is not None else None
    for _ in range(epochs):
        order = torch.randperm(len(ids)).tolist()
        for start in range(0, len(order), 32):
            rows = order[start : start + 32]
            loss = torch.nn.functional.cross_entropy(forward([ids[r] for r in rows]), y[rows])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        if eval_ids is not None and eval_labels is not None:
            with torch.no_grad():
                predicted = forward(eval_ids).argmax(dim=1).tolist()
            right = [classes[p] == g for p, g in zip(predicted, eval_labels, strict=True)]
            history.append(float(np.mean(right)))
    tuned = embedding.weight.detach().numpy().copy()
    with torch.no_grad():
        state = {k: v.numpy().copy() for k, v in head.state_dict().items()}
        s = float(scale)

    def head_logits(pooled: np.ndarray) -> np.ndarray:
        x = pooled * s
        if hidden == 0:
            return x @ state["weight"].T + state["bias"]
        h = np.maximum(x @ state["0.weight"].T + state["0.bias"], 0.0)
        return h @ state["2.weight"].T + state["2.bias"]

    return tuned, head_logits, history


def embed_with(table: np.ndarray, texts: Sequence[str]) -> np.ndarray:
    out = np.stack([table[ids].mean(axis=0) for ids in token_ids(texts)])
    return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-9)


def hybrid_with_table(table: np.ndarray | None) -> HybridIntentModel:
    model = HybridIntentModel()
    if table is not None:
        model._embeddings._loaded()
        model._embeddings._table = table.astype(np.float16)  # served in float16 like the original
    return model


def log_softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


def accuracy_f1(gold: Sequence[str], predicted: Sequence[str]) -> tuple[float, float]:
    m = metrics_from_predictions(gold, predicted, [False] * len(gold))
    return m.accuracy, m.macro_f1


def evaluate(fit: Any, held: Any, args: argparse.Namespace, weights: Sequence[float]) -> dict:
    """Train every variant on ``fit``, score on ``held`` (validation or test)."""
    classes = sorted(set(fit.labels))
    started = time.perf_counter()
    tuned, head, history = fine_tune(
        fit.texts, fit.labels, classes, epochs=args.epochs, hidden=args.hidden, lr=args.lr,
        seed=args.seed, eval_texts=held.texts if not args.test else None,
        eval_labels=held.labels if not args.test else None,
    )  # fmt: skip
    tune_s = time.perf_counter() - started
    tuned_logits = head(embed_with(tuned, held.texts))
    out: dict[str, Any] = {"epoch_accuracy": history, "tune_s": round(tune_s, 1)}
    out["tuned"] = accuracy_f1(held.labels, [classes[i] for i in tuned_logits.argmax(axis=1)])
    base = hybrid_with_table(None).fit(fit.texts, fit.labels)
    base_scores = base.decision_scores(held.texts)
    out["hybrid"] = accuracy_f1(held.labels, [base.labels[i] for i in base_scores.argmax(axis=1)])
    if not args.test:
        retrained = hybrid_with_table(tuned).fit(fit.texts, fit.labels)
        predicted = retrained.predict_proba(held.texts).argmax(axis=1)
        out["hybrid+tuned table"] = accuracy_f1(
            held.labels, [retrained.labels[i] for i in predicted]
        )
    if tuple(base.labels) != tuple(classes):
        raise RuntimeError("the hybrid's classes differ from the tuned head's")
    # The SVM scores need a temperature before they are added to log-probabilities: a fixed
    # 0.1 (a choice, not tuned), so that only the fusion weight is chosen on validation.
    fused_base = log_softmax(base_scores / 0.1)
    tuned_log = log_softmax(tuned_logits)
    for w in weights:
        fused = fused_base + w * tuned_log
        out[f"hybrid + {w:g} x tuned head"] = accuracy_f1(
            held.labels, [classes[i] for i in fused.argmax(axis=1)]
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--hidden", type=int, default=0, help="MLP hidden width; 0: linear head")
    parser.add_argument("--lr", type=float, default=3e-3, help="learning rate of the table")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--weight", type=float, action="append", help="fusion weight(s)")
    parser.add_argument("--test", action="store_true", help="fit on all rows, report test once")
    args = parser.parse_args()
    if importlib.util.find_spec("torch") is None:
        sys.exit("torch is needed to train (only): pip install torch==2.13.0")
    weights = args.weight or [0.25, 0.5, 1.0, 2.0]
    data = default_dataset("train")
    if args.test:
        fit, held = data, bundled_dataset("banking77", "test")
    else:
        fit, held = stratified_split(data, 0.15, args.seed)
    result = evaluate(fit, held, args, weights)
    print(json.dumps({"args": vars(args), "split": "test" if args.test else "validation",
                      **result}, indent=1))  # fmt: skip


if __name__ == "__main__":
    main()
