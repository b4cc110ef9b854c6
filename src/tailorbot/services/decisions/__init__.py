"""The decision plane: personalize and feedback (see docs/decisions.md).

:class:`DecisionService` makes the decisions; :func:`load_decision_models` loads what it
decides with (:mod:`tailorbot.runtime` wires the two).
"""

from __future__ import annotations

from tailorbot.services.decisions.feedback_handler import DecisionNotWritten
from tailorbot.services.decisions.live_models import DecisionModels
from tailorbot.services.decisions.loader import (
    ModelMissing,
    experiment_for,
    load_decision_models,
)
from tailorbot.services.decisions.service import DecisionService

__all__ = [
    "DecisionModels",
    "DecisionNotWritten",
    "DecisionService",
    "ModelMissing",
    "experiment_for",
    "load_decision_models",
]
