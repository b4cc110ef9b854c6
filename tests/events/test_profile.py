from __future__ import annotations

import pytest
from pydantic import ValidationError

from tailorbot.config import Settings
from tailorbot.events.profile import UserProfile, profile_validation_context


def _error(body: dict, context: dict | None = None) -> tuple[str, str]:
    with pytest.raises(ValidationError) as caught:
        UserProfile.model_validate(body, context=context)
    errors = caught.value.errors(include_url=False)
    assert len(errors) == 1, errors
    return ".".join(str(part) for part in errors[0]["loc"]), errors[0]["msg"]


@pytest.mark.parametrize("value", [1180591620717411303424, 2**63, -(2**63) - 1])
def test_an_integer_beyond_64_bits_is_rejected_naming_the_attribute(value: int) -> None:
    field, message = _error({"attributes": {"big": value}})
    assert field == "attributes"
    assert "attributes['big']" in message and "64-bit" in message


def test_non_finite_numbers_are_rejected() -> None:
    field, message = _error({"attributes": {"ratio": float("nan")}})
    assert field == "attributes" and "finite" in message


def test_default_bounds_on_count_key_and_value() -> None:
    assert "at most 32" in _error({"attributes": {f"k{i}": i for i in range(33)}})[1]
    assert "key 'kkkk" in _error({"attributes": {"k" * 65: 1}})[1]
    field, message = _error({"attributes": {"note": "x" * 4_900_000}})
    assert field == "attributes" and "attributes['note']" in message and "1024" in message
    assert "empty" in _error({"attributes": {"": 1}})[1]


def test_settings_tighten_the_bounds(tmp_path) -> None:
    settings = Settings.load(
        data_dir=tmp_path,
        max_profile_attributes=2,
        max_profile_key_chars=5,
        max_profile_value_chars=10,
    )
    context = profile_validation_context(settings)
    assert "at most 2" in _error({"attributes": {"a": 1, "b": 2, "c": 3}}, context)[1]
    assert "longer than 5" in _error({"attributes": {"abcdef": 1}}, context)[1]
    assert "longer than 10" in _error({"attributes": {"a": "x" * 11}}, context)[1]
    ok = UserProfile.model_validate({"attributes": {"a": "x" * 10, "b": 2}}, context=context)
    assert ok.attributes == {"a": "x" * 10, "b": 2}


def test_settings_cannot_exceed_the_published_schema(tmp_path) -> None:
    with pytest.raises(ValidationError, match="max_profile_attributes"):
        Settings.load(data_dir=tmp_path, max_profile_attributes=33)


@pytest.mark.parametrize("value", ["false", "no", 0, 1])
def test_consent_is_a_json_boolean(value: object) -> None:
    field, _ = _error({"consent": {"personalization": value}})
    assert field == "consent.personalization"


def test_attribute_values_keep_their_json_type() -> None:
    attributes = {"vip": True, "score": 5, "five": "5", "ratio": 0.25, "none": None}
    profile = UserProfile.model_validate({"attributes": attributes})
    assert profile.attributes == attributes
    assert [type(v) for v in profile.attributes.values()] == [bool, int, str, float, type(None)]
