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
    from tailorbot.models.intent.followup import FollowUpResolver
    from tailorbot.models.intent.hybrid import HybridIntentModel
    from tailorbot.models.intent.language import LanguageDetector
    from tailorbot.models.intent.routed import UNSUPPORTED_LANGUAGE, LanguageRoutedIntentModel
    from tailorbot.models.intent.static_embeddings import WordLlamaEmbeddings
    from tailorbot.models.intent.tfidf import TfidfIntentModel
    from tailorbot.models.intent.training import (
        INTENT_MODELS,
        TrainedIntentModel,
        stratified_split,
        train_intent_model,
        train_language_routed_model,
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
        "FollowUpResolver": ".followup",
        "HybridIntentModel": ".hybrid",
        "LanguageDetector": ".language",
        "UNSUPPORTED_LANGUAGE": ".routed",
        "LanguageRoutedIntentModel": ".routed",
        "WordLlamaEmbeddings": ".static_embeddings",
        "TfidfIntentModel": ".tfidf",
        "INTENT_MODELS": ".training",
        "TrainedIntentModel": ".training",
        "stratified_split": ".training",
        "train_intent_model": ".training",
        "train_language_routed_model": ".training",
    },
)

__all__ = [
    "INTENT_MODELS",
    "METRIC_NAMES",
    "OUT_OF_SCOPE",
    "UNSUPPORTED_LANGUAGE",
    "DatasetError",
    "FallbackDecision",
    "FallbackPolicy",
    "FollowUpResolver",
    "HybridIntentModel",
    "IntentDataset",
    "IntentMetrics",
    "IntentModel",
    "IntentPrediction",
    "LanguageDetector",
    "LanguageRoutedIntentModel",
    "TfidfIntentModel",
    "TrainedIntentModel",
    "WordLlamaEmbeddings",
    "bundled_dataset",
    "calibrate_fallback",
    "default_dataset",
    "evaluate_intent_model",
    "load_dataset",
    "metrics_from_predictions",
    "normalize_label",
    "stratified_split",
    "train_intent_model",
    "train_language_routed_model",
]
