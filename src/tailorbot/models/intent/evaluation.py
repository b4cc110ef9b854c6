"""How good an intent model is on labelled data, with and without its fallback.

* ``accuracy``, ``macro_f1``: of the top intent (``out_of_scope`` counts as one class when
  the model has it), over all rows; macro-F1 averages over the intents present in the data.
* ``in_scope_accuracy``: share of in-scope rows the bot answers (no fallback) with the right
  intent.
* ``oos_recall``: share of ``out_of_scope`` rows on which the fallback fires.
* ``oos_precision``: share of fallbacks that were on ``out_of_scope`` rows.

The last three are ``None`` when the data has no ``out_of_scope`` row (``oos_precision``
also when the fallback never fired).

>>> m = metrics_from_predictions(["a", "b", "out_of_scope"], ["a", "a", "b"],
...                              [False, False, True])
>>> m.accuracy, m.in_scope_accuracy, m.oos_recall, m.oos_precision
(0.3333333333333333, 0.5, 1.0, 1.0)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
from sklearn.metrics import f1_score

from tailorbot.models.intent.base import OUT_OF_SCOPE, IntentModel

METRIC_NAMES = ("accuracy", "macro_f1", "in_scope_accuracy", "oos_recall", "oos_precision")


@dataclass(frozen=True, slots=True)
class IntentMetrics:
    accuracy: float
    macro_f1: float
    in_scope_accuracy: float | None
    oos_recall: float | None
    oos_precision: float | None
    n: int
    n_out_of_scope: int
    fallback_rate: float

    def to_dict(self) -> dict[str, float | None]:
        """Exactly the five metric names (the ``evaluate --json`` object)."""
        values = asdict(self)
        return {name: values[name] for name in METRIC_NAMES}


def metrics_from_predictions(
    gold: Sequence[str],
    predicted: Sequence[str],
    fired: Sequence[bool] | np.ndarray,
    oos_label: str = OUT_OF_SCOPE,
) -> IntentMetrics:
    """Metrics from gold labels, top intents and whether the fallback fired, row by row."""
    if not (len(gold) == len(predicted) == len(fired)):
        raise ValueError("gold, predicted and fired must have the same length")
    if not len(gold):
        raise ValueError("cannot evaluate on no rows")
    gold_arr = np.asarray(gold, dtype=object)
    pred_arr = np.asarray(predicted, dtype=object)
    fired_arr = np.asarray(fired, dtype=bool)
    correct = gold_arr == pred_arr
    is_oos = gold_arr == oos_label
    present = sorted(set(gold))
    macro_f1 = f1_score(gold_arr, pred_arr, labels=present, average="macro", zero_division=0)
    in_scope_acc = oos_recall = oos_precision = None
    if is_oos.any():
        in_scope = ~is_oos
        in_scope_acc = (
            float((correct & ~fired_arr & in_scope).sum() / in_scope.sum())
            if in_scope.any()
            else None
        )
        oos_recall = float((fired_arr & is_oos).sum() / is_oos.sum())
        oos_precision = (
            float((fired_arr & is_oos).sum() / fired_arr.sum()) if fired_arr.any() else None
        )
    return IntentMetrics(
        accuracy=float(correct.mean()),
        macro_f1=float(macro_f1),
        in_scope_accuracy=in_scope_acc,
        oos_recall=oos_recall,
        oos_precision=oos_precision,
        n=len(gold_arr),
        n_out_of_scope=int(is_oos.sum()),
        fallback_rate=float(fired_arr.mean()),
    )


def evaluate_intent_model(
    model: IntentModel, texts: Sequence[str], gold: Sequence[str]
) -> IntentMetrics:
    """Score ``model`` (with its fallback policy) on labelled texts, through the batch path."""
    probs = model.predict_proba(texts)
    labels = np.asarray(model.labels, dtype=object)
    predicted = labels[probs.argmax(axis=1)]
    fired = model.fallback_fires(texts, probs)
    return metrics_from_predictions(gold, predicted, fired, model.fallback.oos_label)
