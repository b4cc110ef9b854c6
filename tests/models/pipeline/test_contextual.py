from __future__ import annotations

import numpy as np
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


def test_out_of_fold_probabilities_cover_the_rare_labels_rows() -> None:
    from tailorbot.models.pipeline.contextual import out_of_fold_proba
    from tailorbot.models.pipeline.crossval import IntentParams

    card = [f"my card {w} has not arrived" for w in ("new", "visa", "debit", "gold", "old")]
    top_up = [f"my top up of {n} euros failed" for n in ("ten", "five", "six", "nine", "two")]
    rows = [{"text": t, "intent": "card"} for t in card * 2]
    rows += [{"text": t, "intent": "top_up"} for t in top_up * 2]
    rows += [{"text": t, "intent": "pin"} for t in ("forgot my pin", "pin locked", "new pin")]
    labels = ["card", "pin", "top_up"]
    probs = out_of_fold_proba(IntentParams(), rows, labels, k=5)
    # the rare label's rows too: each from a model that saw its other two rows
    assert np.allclose(probs.sum(axis=1), 1.0)
    assert (probs[-3:, labels.index("pin")] > 0).all()
