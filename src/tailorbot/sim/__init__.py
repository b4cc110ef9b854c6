"""The customer simulator behind the demo and ``tailorbot simulate`` (docs/simulator.md)."""

from tailorbot.sim.customers import (
    NULL_UTILITIES,
    PERSONAS,
    VARIANTS,
    Customer,
    CustomerPopulation,
    persona_probabilities,
)
from tailorbot.sim.messages import MessageSource
from tailorbot.sim.outcomes import Outcome, OutcomeModel

__all__ = [
    "NULL_UTILITIES",
    "PERSONAS",
    "VARIANTS",
    "Customer",
    "CustomerPopulation",
    "MessageSource",
    "Outcome",
    "OutcomeModel",
    "persona_probabilities",
]
