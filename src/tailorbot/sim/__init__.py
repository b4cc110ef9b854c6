"""The customer simulator behind the demo and ``tailorbot simulate`` (docs/simulator.md)."""

from tailorbot.sim.customers import (
    CONTEXT_FEATURES,
    VARIANTS,
    Customer,
    CustomerPopulation,
    typical_variant,
)
from tailorbot.sim.messages import MessageSource
from tailorbot.sim.outcomes import Outcome, OutcomeModel

__all__ = [
    "CONTEXT_FEATURES",
    "VARIANTS",
    "Customer",
    "CustomerPopulation",
    "MessageSource",
    "Outcome",
    "OutcomeModel",
    "typical_variant",
]
