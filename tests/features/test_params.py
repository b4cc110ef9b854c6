from __future__ import annotations

import pytest

from tailorbot.config import Settings
from tailorbot.features.params import RETENTION_S, FeatureParams


def test_of_reads_settings_and_passes_params_through() -> None:
    params = FeatureParams.of(Settings(lateness_s=30, recent_intents=4, csat_ewma_alpha=0.2))
    assert params == FeatureParams(lateness_s=30.0, recent_intents=4, csat_ewma_alpha=0.2)
    assert FeatureParams.of(params) is params
    assert FeatureParams.of(None) == FeatureParams()
    assert params.horizon_s == RETENTION_S + 30.0


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("lateness_s", -1.0),
        ("recent_intents", 0),
        ("csat_ewma_alpha", 0.0),
        ("csat_ewma_alpha", 1.5),
    ],
)
def test_bad_values_are_refused_with_the_field_named(field: str, value: float) -> None:
    with pytest.raises(ValueError, match=field):
        FeatureParams(**{field: value})
