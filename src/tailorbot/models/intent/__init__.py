"""Intent detection with a calibrated fallback: data, model, training, evaluation."""

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
