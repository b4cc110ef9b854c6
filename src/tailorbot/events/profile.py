"""User attributes, set with ``PUT /v1/users/{user_id}``.

Free ``attributes`` are bounded in count, key length and value size (settings
``max_profile_attributes``, ``max_profile_key_chars``, ``max_profile_value_chars``, passed as
a validation context built by :func:`profile_validation_context`; without one the published
ceilings apply), and keep the JSON type they came with: ``"5"`` stays a string, ``true`` a
boolean, an integer beyond 64 bits is refused rather than stored as something else.

>>> p = UserProfile.model_validate({"tier": "gold", "consent": {"personalization": False}})
>>> p.consent.personalization, p.language
(False, 'en')
>>> UserProfile.model_validate({"attributes": {"big": 2**70}})
Traceback (most recent call last):
...
pydantic_core._pydantic_core.ValidationError: 1 validation error for UserProfile
attributes
  Value error, attributes['big'] is an integer outside the signed 64-bit range the stores keep ...
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool, ValidationInfo, field_validator

from tailorbot.config import (
    PROFILE_ATTRIBUTES_CEILING,
    PROFILE_KEY_CHARS_CEILING,
    PROFILE_VALUE_CHARS_CEILING,
    Settings,
)
from tailorbot.events.values import free_pairs_problem

ShortText = Annotated[str, Field(min_length=1, max_length=64)]
AttributeKey = Annotated[str, Field(min_length=1, max_length=PROFILE_KEY_CHARS_CEILING)]
AttributeText = Annotated[str, Field(max_length=PROFILE_VALUE_CHARS_CEILING)]


def profile_validation_context(settings: Settings) -> dict[str, int]:
    """The context :class:`UserProfile` validates against: the bounds of ``settings``.

    >>> profile_validation_context(Settings.load(max_profile_attributes=4))["max_attributes"]
    4
    """
    return {
        "max_attributes": settings.max_profile_attributes,
        "max_key_chars": settings.max_profile_key_chars,
        "max_value_chars": settings.max_profile_value_chars,
    }


class Consent(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    # strict: a consent is a JSON boolean, never a "false" string read as True
    personalization: StrictBool = Field(True, description="False: no feature profile is built.")
    analytics: StrictBool = Field(True, description="False: events are not used for training.")


class UserProfile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Annotated[str, Field(max_length=128)] | None = None
    tier: ShortText = "standard"
    language: ShortText = "en"
    region: ShortText | None = None
    products: list[ShortText] = Field(default_factory=list, max_length=50)
    consent: Consent = Consent()  # frozen: one shared default is safe
    attributes: dict[AttributeKey, AttributeText | int | float | bool | None] = Field(
        default_factory=dict,
        max_length=PROFILE_ATTRIBUTES_CEILING,
        description="Free extra attributes: integers within 64 bits, finite numbers, strings "
        "up to max_profile_value_chars characters (settings may lower the bounds shown here).",
    )

    @field_validator("attributes", mode="before")
    @classmethod
    def _attributes_bounded(cls, value: Any, info: ValidationInfo) -> Any:
        # before pydantic's union, which would turn a 2**70 into a float
        problem = attributes_problem(value, info.context)
        if problem is not None:
            raise ValueError(problem)
        return value


def attributes_problem(attributes: Any, context: Mapping[str, int] | None) -> str | None:
    """Why ``attributes`` break the bounds of ``context`` (a :func:`profile_validation_context`;
    the published ceilings without one), or ``None``.

    >>> attributes_problem({"a": 1, "b": 2}, {"max_attributes": 1})
    'attributes has 2 keys; at most 1 are accepted'
    """
    context = context or {}
    return free_pairs_problem(
        "attributes",
        attributes,
        max_keys=context.get("max_attributes", PROFILE_ATTRIBUTES_CEILING),
        max_key_chars=context.get("max_key_chars", PROFILE_KEY_CHARS_CEILING),
        max_value_chars=context.get("max_value_chars", PROFILE_VALUE_CHARS_CEILING),
    )


def consents_to_personalization(profile: Mapping[str, Any] | None) -> bool:
    """Consent is assumed until the user says otherwise (the default of :class:`Consent`)."""
    return _consents(profile, "personalization")


def consents_to_analytics(profile: Mapping[str, Any] | None) -> bool:
    """Whether the user's events may be used for training; assumed until they say no.

    >>> consents_to_analytics(None), consents_to_analytics({"consent": {"analytics": False}})
    (True, False)
    """
    return _consents(profile, "analytics")


def _consents(profile: Mapping[str, Any] | None, purpose: str) -> bool:
    if not profile:
        return True
    return bool(profile.get("consent", {}).get(purpose, True))
