"""The contextual intent model: gradient-boosted trees (LightGBM) over the text model's
probabilities plus the user's features as of the message (recent intents, time since the last
contact, segment, channel, the bandit's context vector).

The text model's probabilities on the training rows are **out of fold** (each row scored by a
text model that did not train on it); otherwise the trees would learn to trust an overfitted
text model. Early stopping uses the validation split; the comparison with the text model
alone is on the test split, once. The pipeline keeps the contextual model only where it beats
text-only there (:func:`compare_on_split`).

>>> names = ("a", "b")
>>> row = {"features": {"recent_intents": ["b"], "time_since_last_contact_s": 60.0,
...        "segment": "new", "context": {"bias": 1.0}}, "channel": "chat"}
>>> context_features([row], names).shape
(1, 5)
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import numpy as np
import orjson

from tailorbot.models.pipeline.crossval import IntentParams
from tailorbot.models.pipeline.splits import kfold_indices, row_text, split_rows


def context_features(rows: Sequence[Mapping[str, Any]], labels: Sequence[str]) -> np.ndarray:
    """Multi-hot recent intents over ``labels``, log time since last contact, a known-user flag,
    then the context vector (in its key order)."""
    index = {name: i for i, name in enumerate(labels)}
    out = []
    for row in rows:
        features = row.get("features") or {}
        recent = np.zeros(len(labels))
        for intent in features.get("recent_intents") or []:
            if intent in index:
                recent[index[intent]] = 1.0
        since = features.get("time_since_last_contact_s")
        context = features.get("context") or {}
        extra = [
            -1.0 if since is None else math.log1p(since),
            0.0 if since is None else 1.0,
            *[float(context[k]) for k in sorted(context)],
        ]
        out.append(np.concatenate([recent, extra]))
    return np.vstack(out)


def _xy(rows: Sequence[Mapping[str, Any]]) -> tuple[list[str], list[str]]:
    return [str(r["text"]) for r in rows], [str(r["intent"]) for r in rows]


def out_of_fold_proba(
    params: IntentParams, rows: Sequence[Mapping[str, Any]], labels: Sequence[str], k: int = 5
) -> np.ndarray:
    """Text-model probabilities for ``rows``, each from a model fitted without it or any
    copy of its text (rows of labels rarer than ``k`` too: left out of every fold, they
    would read as all-zero probabilities here and real ones when served)."""
    texts, gold = _xy(rows)
    probs = np.zeros((len(rows), len(labels)))
    column = {name: i for i, name in enumerate(labels)}
    for train, held in kfold_indices(gold, k, groups=texts, hold_out_every_row=True):
        model = params.make_model().fit([texts[i] for i in train], [gold[i] for i in train])
        fold = model.predict_proba([texts[i] for i in held])
        for j, name in enumerate(model.labels):
            probs[held, column[name]] = fold[:, j]
    return probs


def compare_on_split(
    rows: Sequence[Mapping[str, Any]],
    params: IntentParams | None = None,
    *,
    seed: int = 0,
    rounds: int = 300,
) -> dict[str, Any]:
    """Train text-only and contextual on train (+ validation for early stopping); score both
    once on the test split. Rows need the dataset's ``features`` and ``epoch``."""
    import lightgbm as lgb

    params = params or IntentParams()
    # Copies are rows with the same text *and* context: one text in different contexts is
    # what the contextual model is for.
    split = split_rows(rows, by_time=True, seed=seed, same=_text_and_context)
    train_x, train_y = _xy(split.train)
    text_model = params.make_model().fit(train_x, train_y)
    labels = list(text_model.labels)
    column = {name: i for i, name in enumerate(labels)}
    known = [r for r in split.validation if r["intent"] in column]
    tested = [r for r in split.test if r["intent"] in column]

    def stack(part: Sequence[Mapping[str, Any]], probs: np.ndarray) -> np.ndarray:
        return np.hstack([probs, context_features(part, labels)])

    oof = out_of_fold_proba(params, split.train, labels)
    booster = lgb.LGBMClassifier(
        n_estimators=rounds, learning_rate=0.05, num_leaves=15, min_child_samples=5,
        subsample=0.8, subsample_freq=1, colsample_bytree=0.5, random_state=seed, verbose=-1,
    )  # fmt: skip
    val_probs = text_model.predict_proba(_xy(known)[0])
    booster.fit(
        stack(split.train, oof),
        [column[y] for y in train_y],
        eval_X=(stack(known, val_probs),),
        eval_y=([column[r["intent"]] for r in known],),
        callbacks=[lgb.early_stopping(20, verbose=False)],
    )
    test_probs = text_model.predict_proba(_xy(tested)[0])
    gold = np.asarray([column[r["intent"]] for r in tested])
    text_acc = float((test_probs.argmax(axis=1) == gold).mean())
    boosted = np.asarray(booster.predict_proba(stack(tested, test_probs)))
    classes = np.asarray(booster.classes_)
    context_acc = float((classes[boosted.argmax(axis=1)] == gold).mean())
    return {
        "rows": {"train": len(split.train), "validation": len(known), "test": len(tested)},
        "text_only_accuracy": text_acc,
        "contextual_accuracy": context_acc,
        "gain": context_acc - text_acc,
        "keep_contextual": context_acc > text_acc,
        "trees": int(booster.best_iteration_ or rounds),
    }


def _text_and_context(row: Mapping[str, Any]) -> Hashable:
    return (row_text(row), orjson.dumps(row.get("features"), option=orjson.OPT_SORT_KEYS))
