"""Recency weights count ages back from the newest row the model may see, not the test's."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from tailorbot.models.pipeline import trainer
from tailorbot.models.pipeline.crossval import IntentParams

DAY = 86_400.0
WORDS = {"card": "card delivery parcel", "pin": "pin code locked", "fx": "exchange rate fee"}


def test_the_test_windows_times_do_not_shift_the_training_weights(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rows = [
        {"text": f"{words} number {i}", "intent": intent, "epoch": i * DAY}
        for intent, words in WORDS.items()
        for i in range(20)
    ]
    seen: list[np.ndarray] = []
    real = trainer.fit_with_base

    def spy(*args: Any, **kwargs: Any) -> Any:
        weights = args[5] if len(args) > 5 else kwargs.get("weights")
        if weights is not None:
            seen.append(np.asarray(weights))
        return real(*args, **kwargs)

    monkeypatch.setattr(trainer, "fit_with_base", spy)
    params = IntentParams(model="tfidf", half_life_days=5.0)
    trainer.train_intent(rows, search=False, params=params, by_time=True, k=2)
    assert seen
    # the newest train/validation row is 3 days older than the newest test row: it weighs 1
    assert max(float(w.max()) for w in seen) == pytest.approx(1.0)
