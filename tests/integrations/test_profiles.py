"""Profile fields from chatbots: checked whole before anything is written."""

from __future__ import annotations

from typing import Any

import pytest

from tailorbot.errors import InvalidInput
from tailorbot.events.profile import UserProfile
from tailorbot.integrations.profiles import ProfileUpdater


class Profiles:
    """A profile store and the user service that writes to it, in memory."""

    def __init__(self, profile_bounds: dict[str, int] | None = None) -> None:
        self.stored: dict[str, dict[str, Any]] = {}
        self.profile_bounds = profile_bounds

    def get(self, user_id: str) -> dict[str, Any] | None:
        return self.stored.get(user_id)

    def put_profile(self, user_id: str, profile: UserProfile) -> None:
        self.stored[user_id] = profile.model_dump(mode="json")


def updater(profiles: Profiles) -> ProfileUpdater:
    return ProfileUpdater(profiles, profiles)  # type: ignore[arg-type]


@pytest.mark.parametrize("user_id", ["jane@example.com", "q4\n", "", "x" * 129, "has space"])
def test_an_id_events_would_refuse_is_refused(user_id: str) -> None:
    profiles = Profiles()
    with pytest.raises(InvalidInput) as caught:
        updater(profiles).update(user_id, {"tier": "gold"})
    assert [p.field for p in caught.value.problems] == ["user_id"]
    assert profiles.stored == {}


def test_the_settings_bounds_are_checked_before_writing() -> None:
    profiles = Profiles({"max_attributes": 1, "max_key_chars": 64, "max_value_chars": 64})
    with pytest.raises(InvalidInput) as caught:
        updater(profiles).check("u1", {"attributes.a": 1, "attributes.b": 2})
    assert "at most 1" in caught.value.problems[0].reason
    assert updater(profiles).check("u1", {"attributes.a": 1}) is not None
    assert profiles.stored == {}  # check writes nothing
    assert updater(profiles).update("u1", {"attributes.a": 1}) is True
    assert updater(profiles).check("u1", {"attributes.a": 1}) is None  # nothing would change
