"""The KB's own identity: ``kb.yaml`` at the root of a KB folder.

Besides articles and templates, the root ``kb.yaml`` may hold two sections:

* ``brand``: ``name`` (fills ``{brand}``), ``support_hours`` (``{support_hours}``),
  ``handoff_text`` (``{handoff_text}``, what the bot says when it hands over) and
  ``help_url``: the base URL of the public help centre, from which an article without a
  ``url`` of its own gets ``<help_url>/<article id>``.
* ``placeholders``: the KB's own placeholders, each filled from a profile field
  (``tier``, ``region``...) or a free profile attribute (``attributes.<name>``), with a
  ``default`` used when the profile has no value.

>>> manifest = KBManifest.model_validate({
...     "brand": {"name": "Tailor Telecom", "support_hours": "8:00-20:00 CET",
...               "help_url": "https://help.example.com/articles"},
...     "placeholders": {"plan": {"source": "attributes.plan", "default": "your plan"}}})
>>> manifest.values({"attributes": {"plan": "Unlimited 5G"}})["plan"]
'Unlimited 5G'
>>> manifest.defaults()["brand"], manifest.defaults()["plan"]
('Tailor Telecom', 'your plan')
>>> manifest.article_url("kb-roaming")
'https://help.example.com/articles/kb-roaming'
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from tailorbot.kb.render import PLACEHOLDERS

MANIFEST_FILE = "kb.yaml"
MANIFEST_SECTIONS = ("brand", "placeholders")
PROFILE_FIELDS = ("name", "tier", "language", "region")
Url = Annotated[str, Field(max_length=500, pattern=r"^https?://[^\s]+$")]
PlaceholderName = Annotated[str, Field(pattern=r"^[a-z_][a-z0-9_]*$", max_length=64)]


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class Brand(_Record):
    """Who the bot speaks for."""

    name: Annotated[str, Field(min_length=1, max_length=100)]
    support_hours: Annotated[str, Field(max_length=200)] = ""
    handoff_text: Annotated[str, Field(max_length=500)] = ""
    help_url: Url | None = Field(None, description="Articles without a url link below it.")


class CustomPlaceholder(_Record):
    """A placeholder of the KB's own, filled from the customer's profile."""

    source: Annotated[str, Field(min_length=1, max_length=80)] = Field(
        description="A profile field (name, tier, language, region) or attributes.<name>."
    )
    default: Annotated[str, Field(max_length=200)] = ""

    @field_validator("source")
    @classmethod
    def _source_exists(cls, source: str) -> str:
        if source in PROFILE_FIELDS:
            return source
        prefix, _, attribute = source.partition(".")
        if prefix == "attributes" and attribute:
            return source
        raise ValueError(
            f"source {source!r} is not a profile field ({', '.join(PROFILE_FIELDS)}) "
            "nor attributes.<name>"
        )

    def value(self, profile: Mapping[str, Any] | None) -> Any:
        """The profile's value for this placeholder (None when it has none)."""
        if not profile:
            return None
        if self.source in PROFILE_FIELDS:
            return profile.get(self.source)
        attributes = profile.get("attributes") or {}
        return attributes.get(self.source.partition(".")[2])


class KBManifest(_Record):
    """The ``brand`` and ``placeholders`` sections of the root ``kb.yaml``."""

    brand: Brand | None = None
    placeholders: dict[PlaceholderName, CustomPlaceholder] = Field(default_factory=dict)

    @field_validator("placeholders")
    @classmethod
    def _no_builtin_shadowing(
        cls, value: dict[str, CustomPlaceholder]
    ) -> dict[str, CustomPlaceholder]:
        taken = sorted(set(value) & set(PLACEHOLDERS))
        if taken:
            raise ValueError(f"{', '.join(taken)}: built-in placeholder names; pick another")
        return value

    def known(self) -> set[str]:
        """Every placeholder a template of this KB may use."""
        return set(PLACEHOLDERS) | set(self.placeholders)

    def defaults(self) -> dict[str, str]:
        """Text for placeholders the context leaves empty (the KB's own before built-ins)."""
        found = {name: spec.default for name, spec in self.placeholders.items() if spec.default}
        if self.brand is not None:
            found["brand"] = self.brand.name
            if self.brand.support_hours:
                found["support_hours"] = self.brand.support_hours
            if self.brand.handoff_text:
                found["handoff_text"] = self.brand.handoff_text
        return found

    def values(self, profile: Mapping[str, Any] | None) -> dict[str, Any]:
        """The KB's own placeholders filled from a profile (None where it has no value)."""
        return {name: spec.value(profile) for name, spec in self.placeholders.items()}

    def article_url(self, article_id: str) -> str | None:
        if self.brand is None or self.brand.help_url is None:
            return None
        return f"{self.brand.help_url.rstrip('/')}/{article_id}"
