from __future__ import annotations

import pytest

from tailorbot.models.intent.base import FallbackDecision, IntentPrediction
from tailorbot.models.intent.followup import FollowUpResolver


def prediction(name: str, p: float, reason: str | None = None) -> IntentPrediction:
    return IntentPrediction(name, p, [(name, p)], FallbackDecision(reason is not None, reason))


@pytest.mark.parametrize(
    ("reply", "text", "kind"),
    [
        (prediction("deny", 0.9), "no", "deny"),
        (prediction("card_arrival", 0.3, "low_confidence"), "still not", "continuation"),
        (prediction("card_arrival", 0.5, "small_margin"), "still not", "continuation"),
        (prediction("top_up_failed", 0.6), "it didn't work", "continuation"),
        (prediction("out_of_scope", 0.8, "out_of_scope"), "how long?", "continuation"),
        (prediction("out_of_scope", 0.99, "out_of_scope"), "tell me a joke", None),
        (prediction("top_up_failed", 0.95), "top up failed", None),
        (prediction("affirm", 0.9), "yes " * 7, None),  # too long for a reply
        (prediction("affirm", 0.9, "unsupported_language"), "ja genau", None),
    ],
)
def test_follow_up_kinds(reply: IntentPrediction, text: str, kind: str | None) -> None:
    resolver = FollowUpResolver()
    assert resolver.follow_up_kind(reply, text, "card_arrival") == kind
    resolved = resolver.resolve(reply, text, "card_arrival")
    if kind is None:
        assert resolved == reply
    else:
        assert resolved.name == "card_arrival" and resolved.follow_up == kind
        assert resolved.ranking == reply.ranking and not resolved.fallback.triggered


def test_no_topic_no_follow_up() -> None:
    resolver = FollowUpResolver()
    for previous in (None, "", "greeting", "human_handoff", "out_of_scope"):
        assert resolver.follow_up_kind(prediction("affirm", 0.9), "yes", previous) is None
    with pytest.raises(ValueError, match="max_words"):
        FollowUpResolver(max_words=0)
