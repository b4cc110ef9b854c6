"""Off-policy evaluation of response-variant policies from logged decisions (docs/ope.md).

Estimators follow the Open Bandit Pipeline's shape: one small class each with
``estimate_policy_value(reward, action, pscore, action_dist, estimated_rewards, clusters)``.
"""

from tailorbot.models.evaluation.ope.base import OffPolicyEstimator, PolicyValue
from tailorbot.models.evaluation.ope.data import METRICS, LoggedDecisions
from tailorbot.models.evaluation.ope.dr import DoublyRobust
from tailorbot.models.evaluation.ope.evaluate import Estimate, evaluate_policies
from tailorbot.models.evaluation.ope.ips import InverseProbabilityWeighting
from tailorbot.models.evaluation.ope.policies import FixedVariant, LearnedBandit, TargetPolicy
from tailorbot.models.evaluation.ope.snips import SelfNormalizedIPS

__all__ = [
    "METRICS",
    "DoublyRobust",
    "Estimate",
    "FixedVariant",
    "InverseProbabilityWeighting",
    "LearnedBandit",
    "LoggedDecisions",
    "OffPolicyEstimator",
    "PolicyValue",
    "SelfNormalizedIPS",
    "TargetPolicy",
    "evaluate_policies",
]
