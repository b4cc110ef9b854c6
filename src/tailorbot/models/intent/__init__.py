"""Intent detection with a calibrated fallback: data, model, training, evaluation.

Exports are imported on first use: training and evaluation pull in scikit-learn, which the
server needs only once it loads a model.
"""

from typing import TYPE_CHECKING

from tailorbot._lazy import lazy_exports

if TYPE_CHECKING:
    from tailorbot.models.intent.base import (
        OUT_OF_SCOPE,
        FallbackDecision,
        IntentModel,
        IntentPrediction,
    )
    from tailorbot.models.intent.dataset import (
        DatasetError,
        IntentDataset,
        bundled_dataset,
        default_dataset,
        load_dataset,
        normalize_label,
    )
    from tailorbot.models.intent.evaluation import (
        METRIC_NAMES,
        IntentMetrics,
        evaluate_intent_model,
        metrics_from_predictions,
    )
    from tailorbot.models.intent.fallback import FallbackPolicy, calibrate_fallback
    from tailorbot.models.intent.tfidf import TfidfIntentModel
    from tailorbot.models.intent.training import (
        TrainedIntentModel,
        stratified_split,
        train_intent_model,
    )

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "OUT_OF_SCOPE": ".base",
        "FallbackDecision": ".base",
        "IntentModel": ".base",
        "IntentPrediction": ".base",
        "DatasetError": ".dataset",
        "IntentDataset": ".dataset",
        "bundled_dataset": ".dataset",
        "default_dataset": ".dataset",
        "load_dataset": ".dataset",
        "normalize_label": ".dataset",
        "METRIC_NAMES": ".evaluation",
        "IntentMetrics": ".evaluation",
        "evaluate_intent_model": ".evaluation",
        "metrics_from_predictions": ".evaluation",
        "FallbackPolicy": ".fallback",
        "calibrate_fallback": ".fallback",
        "TfidfIntentModel": ".tfidf",
        "TrainedIntentModel": ".training",
        "stratified_split": ".training",
        "train_intent_model": ".training",
    },
)

__all__ = [
    "METRIC_NAMES",
    "OUT_OF_SCOPE",
    "DatasetError",
    "FallbackDecision",
    "FallbackPolicy",
    "IntentDataset",
    "IntentMetrics",
    "IntentModel",
    "IntentPrediction",
    "TfidfIntentModel",
    "TrainedIntentModel",
    "bundled_dataset",
    "calibrate_fallback",
    "default_dataset",
    "evaluate_intent_model",
    "load_dataset",
    "metrics_from_predictions",
    "normalize_label",
    "stratified_split",
    "train_intent_model",
]
