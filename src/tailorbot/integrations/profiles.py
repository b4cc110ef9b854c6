"""Profile fields that a chatbot knows (Rasa slots, Chatwoot contact attributes), merged in.

A field is ``name``, ``tier``, ``language``, ``region`` or ``attributes.<key>``; the rest of
the stored profile (consent above all) is kept as it is. The merged profile is validated
like ``PUT /v1/users/{id}`` and written through the user service, so withdrawing consent and
the other profile rules keep applying.

>>> merged = merge_profile({"tier": "gold", "attributes": {"a": 1}},
...                        {"attributes.plan": "5G", "name": "Ada"})
>>> merged.tier, merged.name, merged.attributes
('gold', 'Ada', {'a': 1, 'plan': '5G'})
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from pydantic import ValidationError

from tailorbot.errors import InvalidInput, Problem, backend_errors
from tailorbot.events.profile import UserProfile
from tailorbot.store.base import ProfileStore


class ProfileWriter(Protocol):
    def put_profile(self, user_id: str, profile: UserProfile) -> None: ...


def merge_profile(stored: Mapping[str, Any] | None, fields: Mapping[str, Any]) -> UserProfile:
    """``stored`` with ``fields`` set; :class:`InvalidInput` names a field that does not fit."""
    merged: dict[str, Any] = dict(stored or {})
    attributes = dict(merged.get("attributes") or {})
    for name, value in fields.items():
        prefix, _, key = name.partition(".")
        if prefix == "attributes" and key:
            attributes[key] = value
        elif value is not None:
            merged[name] = value
    merged["attributes"] = attributes
    try:
        return UserProfile.model_validate(merged)
    except ValidationError as exc:
        problems = [
            Problem(None, ".".join(str(part) for part in error["loc"]), error["msg"])
            for error in exc.errors(include_url=False)
        ]
        raise InvalidInput(
            "profile fields from the chatbot do not fit", problems=problems
        ) from None


class ProfileUpdater:
    """Merge chatbot-known fields into stored profiles (``users`` writes them)."""

    def __init__(self, profiles: ProfileStore, users: ProfileWriter) -> None:
        self.profiles = profiles
        self.users = users

    def update(
        self, user_id: str, fields: Mapping[str, Any], if_missing: Mapping[str, Any] | None = None
    ) -> bool:
        """Merge ``fields`` into the user's profile, and ``if_missing`` where the profile has
        no value yet; False when nothing changed."""
        if not fields and not if_missing:
            return False
        with backend_errors():
            stored = self.profiles.get(user_id)
        missing = {k: v for k, v in (if_missing or {}).items() if not (stored or {}).get(k)}
        merged = merge_profile(stored, {**missing, **fields})
        if stored is not None and merged.model_dump(mode="json") == stored:
            return False
        self.users.put_profile(user_id, merged)
        return True
