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

from pydantic import TypeAdapter, ValidationError

from tailorbot.errors import InvalidInput, Problem, backend_errors
from tailorbot.events.identifiers import Identifier
from tailorbot.events.profile import UserProfile
from tailorbot.store.base import Erasure, ProfileStore, Stores

_USER_ID: TypeAdapter[str] = TypeAdapter(Identifier)


class ProfileWriter(Protocol):
    # the settings' attribute bounds (``profile_validation_context``); None: the ceilings
    profile_bounds: Mapping[str, int] | None
    stores: Stores  # its feature store keeps the users' erasures

    def put_profile(self, user_id: str, profile: UserProfile) -> None: ...


def check_user_id(user_id: str) -> str:
    """``user_id``, or :class:`InvalidInput` when events would refuse it (the same rules: a
    profile under such an id could not be erased with ``DELETE /v1/users/{id}``)."""
    try:
        return _USER_ID.validate_python(user_id)
    except ValidationError as exc:
        reasons = "; ".join(error["msg"] for error in exc.errors(include_url=False))
        raise InvalidInput(
            f"user id not accepted: {reasons}", problems=[Problem(None, "user_id", reasons)]
        ) from None


def merge_profile(
    stored: Mapping[str, Any] | None,
    fields: Mapping[str, Any],
    bounds: Mapping[str, int] | None = None,
) -> UserProfile:
    """``stored`` with ``fields`` set; :class:`InvalidInput` names a field that does not fit
    (``bounds``: a ``profile_validation_context``, else the published ceilings)."""
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
        return UserProfile.model_validate(merged, context=bounds)
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
        merged = self.check(user_id, fields, if_missing)
        if merged is None:
            return False
        self.users.put_profile(user_id, merged)
        return True

    def since_erasure(
        self, user_id: str, fields: Mapping[str, Any], dated: Mapping[str, float]
    ) -> dict[str, Any]:
        """``fields`` less those set by a chatbot event (``dated``: field -> its epoch s) made
        before the user's erasure: a re-delivered event must not bring an erased profile
        back. An undated field is kept."""
        erasure = self._erasure(user_id)
        if erasure is None:
            return dict(fields)
        return {
            name: value
            for name, value in fields.items()
            if name not in dated or not erasure.predates(dated[name])
        }

    def erased_after(self, user_id: str, dated: float) -> bool:
        """Whether the user was erased after ``dated`` (epoch s): what a chatbot sent about
        them before then went with the erasure."""
        erasure = self._erasure(user_id)
        return erasure is not None and erasure.predates(dated)

    def _erasure(self, user_id: str) -> Erasure | None:
        with backend_errors():
            return self.users.stores.features.erasures([user_id]).get(user_id)

    def check(
        self, user_id: str, fields: Mapping[str, Any], if_missing: Mapping[str, Any] | None = None
    ) -> UserProfile | None:
        """The profile :meth:`update` would write (None: nothing would change), writing
        nothing: :class:`InvalidInput` for what it would refuse, so that a caller can check
        every change before it writes any."""
        check_user_id(user_id)
        if not fields and not if_missing:
            return None
        with backend_errors():
            stored = self.profiles.get(user_id)
        missing = {k: v for k, v in (if_missing or {}).items() if not (stored or {}).get(k)}
        merged = merge_profile(stored, {**missing, **fields}, self.users.profile_bounds)
        if stored is not None and merged.model_dump(mode="json") == stored:
            return None
        return merged
