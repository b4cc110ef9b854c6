"""Settings: sources and their priority, validation, and the round trip through env vars."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from tailorbot.config import Settings


def test_priority_is_kwargs_then_env_then_toml(tmp_path: Path, monkeypatch) -> None:
    toml = tmp_path / "tb.toml"
    toml.write_text('partitions = 16\nport = 9000\napi_key = "from-file"\n')
    monkeypatch.setenv("TAILORBOT_PORT", "9100")
    settings = Settings.load(toml, partitions=4)
    assert settings.partitions == 4  # keyword argument wins
    assert settings.port == 9100  # environment beats the file
    assert settings.api_key is not None and settings.api_key.get_secret_value() == "from-file"


def test_missing_config_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="config file not found"):
        Settings.load(tmp_path / "nope.toml")


def test_backend_urls_default_under_the_data_dir(tmp_path: Path) -> None:
    settings = Settings.load(data_dir=tmp_path)
    assert settings.resolved_log_url() == f"sqlite:///{tmp_path / 'log.db'}"
    assert settings.resolved_store_url() == f"sqlite:///{tmp_path / 'store.db'}"
    custom = Settings.load(data_dir=tmp_path, log_url="redis://127.0.0.1:6379/0")
    assert custom.resolved_log_url() == "redis://127.0.0.1:6379/0"


def test_settings_are_frozen() -> None:
    with pytest.raises(ValidationError):
        Settings.load().port = 1  # type: ignore[misc]


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"partitions": 0}, "partitions"),
        ({"control_variant": "concise please"}, "control_variant"),  # not a variant name
        ({"bandit": "greedy"}, "bandit"),
        ({"bandit": "thompson", "bandit_alpha": 0}, "bandit_alpha"),
        ({"experiment_holdout": 1.5}, "experiment_holdout"),
        ({"decision_threads": -1}, "decision_threads"),
        # decisions on the event loop over Redis (its default) may not read it per choice
        ({"bandit_sync_s": 0, "store_url": "redis://127.0.0.1:6379/0"}, "bandit_sync_s"),
        ({"dashboard_step_s": 0}, "dashboard_step_s"),
    ],
)
def test_bad_values_name_the_field(overrides: dict, field: str) -> None:
    with pytest.raises(ValidationError, match=field):
        Settings.load(**overrides)


def test_to_env_rebuilds_the_same_settings(tmp_path: Path, monkeypatch) -> None:
    settings = Settings.load(
        data_dir=tmp_path,
        api_key="k",
        context_attributes=("new_account", "segment=business"),
        experiment_holdout=0.25,
        redact=False,
    )
    for name, value in settings.to_env().items():
        monkeypatch.setenv(name, value)
    assert Settings.load() == settings
