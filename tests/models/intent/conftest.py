from __future__ import annotations

import pytest

from tailorbot.config import Settings
from tailorbot.models.intent import (
    INTENT_MODELS,
    default_dataset,
    train_language_routed_model,
)


@pytest.fixture(scope="session")
def default_model():
    """What `tailorbot train` builds with the default settings (trained once per session)."""
    settings = Settings()
    return train_language_routed_model(
        {settings.intent_language: default_dataset("train", settings.builtin_intents)},
        default_language=settings.intent_language,
        detect_languages=settings.detect_languages,
        make_model=INTENT_MODELS[settings.intent_model],
    )
