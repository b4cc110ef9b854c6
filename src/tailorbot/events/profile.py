"""User attributes, set with ``PUT /v1/users/{user_id}``.

>>> p = UserProfile.model_validate({"tier": "gold", "consent": {"personalization": False}})
>>> p.consent.personalization, p.language
(False, 'en')
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

ShortText = Annotated[str, Field(min_length=1, max_length=64)]


class Consent(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    personalization: bool = Field(True, description="False: no feature profile is built.")
    analytics: bool = Field(True, description="False: events are not used for training.")


class UserProfile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Annotated[str, Field(max_length=128)] | None = None
    tier: ShortText = "standard"
    language: ShortText = "en"
    region: ShortText | None = None
    products: list[ShortText] = Field(default_factory=list, max_length=50)
    consent: Consent = Consent()  # frozen: one shared default is safe
    attributes: dict[ShortText, str | int | float | bool | None] = Field(
        default_factory=dict, max_length=32, description="Free extra attributes."
    )


def consents_to_personalization(profile: Mapping[str, Any] | None) -> bool:
    """Consent is assumed until the user says otherwise (the default of :class:`Consent`)."""
    if not profile:
        return True
    return bool(profile.get("consent", {}).get("personalization", True))
