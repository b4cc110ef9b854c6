"""Contextual bandits that choose the response variant, and the feedback-to-reward mapping."""

from tailorbot.models.bandit.base import Choice, ContextualBandit
from tailorbot.models.bandit.linucb import LinUCB
from tailorbot.models.bandit.reward import FeedbackReward, feedback_reward, rating_score
from tailorbot.models.bandit.thompson import LinearThompson

__all__ = [
    "Choice",
    "ContextualBandit",
    "FeedbackReward",
    "LinUCB",
    "LinearThompson",
    "feedback_reward",
    "rating_score",
]
