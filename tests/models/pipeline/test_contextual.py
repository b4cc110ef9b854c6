from __future__ import annotations

import pytest

from tailorbot.models.pipeline.dataset import build_dataset
from tests.models.pipeline.support import support_log

pytest.importorskip("lightgbm")  # the optional 'learning' extra


def test_history_resolves_follow_ups_the_text_alone_cannot() -> None:
    from tailorbot.models.pipeline.contextual import compare_on_split

    events, profiles = support_log(users=120, contacts=6, seed=7, ambiguous_share=0.5)
    rows = build_dataset(events, profiles)
    result = compare_on_split(rows, rounds=200)
    # "it is about the same thing again" is a quarter-chance guess for the text model; the
    # customer's recent intents name it.
    assert result["text_only_accuracy"] < 0.9
    assert result["contextual_accuracy"] > result["text_only_accuracy"] + 0.1
    assert result["keep_contextual"] is True
