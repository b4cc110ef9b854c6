"""The ProfileStore contract: every backend in STORE_FACTORIES must pass all of it."""

from __future__ import annotations

from tailorbot.store.base import ProfileStore
from tests.contract.conftest import StoreOpener, record


def test_profiles_are_replaced_whole(profile_store: ProfileStore) -> None:
    assert profile_store.get("u1") is None
    profile_store.put("u1", {"tier": "gold", "consent": {"personalization": False}})
    assert profile_store.get("u1") == {"tier": "gold", "consent": {"personalization": False}}
    profile_store.put("u1", {"tier": "standard"})
    profile_store.put("u2", {"language": "de"})
    assert profile_store.get("u1") == {"tier": "standard"}
    assert profile_store.get_many(["u1", "u2", "nobody", "u1"]) == {
        "u1": {"tier": "standard"},
        "u2": {"language": "de"},
    }
    assert profile_store.get_many([]) == {}


def test_callers_may_mutate_what_they_read(profile_store: ProfileStore) -> None:
    profile_store.put("u1", {"tier": "gold"})
    for _ in range(2):  # the second round reads whatever a cache kept
        profile_store.get("u1")["tier"] = "mutated"
        profile_store.get_many(["u1"])["u1"]["extra"] = True
    assert profile_store.get("u1") == {"tier": "gold"}


def test_delete_forgets_only_that_user(profile_store: ProfileStore) -> None:
    profile_store.put("victim", {"tier": "gold"})
    profile_store.put("bystander", {"tier": "standard"})
    assert profile_store.get("victim") is not None  # (and now possibly cached)
    profile_store.delete("victim")
    profile_store.delete("nobody")
    assert profile_store.get("victim") is None
    assert profile_store.get_many(["victim", "bystander"]) == {"bystander": {"tier": "standard"}}


def test_a_second_handle_sees_every_write_at_once(open_online_stores: StoreOpener) -> None:
    reader, writer = open_online_stores().profiles, open_online_stores().profiles
    assert reader.get("u1") is None  # possibly cached as absent
    writer.put("u1", {"tier": "gold"})
    assert reader.get("u1") == {"tier": "gold"}
    writer.put("u1", {"tier": "platinum"})
    assert reader.get_many(["u1"]) == {"u1": {"tier": "platinum"}}
    writer.delete("u1")
    assert reader.get("u1") is None


def test_ping_answers_when_the_store_is_up(profile_store: ProfileStore) -> None:
    profile_store.ping()


def test_profile_and_record_is_what_each_store_reads(open_online_stores: StoreOpener) -> None:
    """A decision's one read of a user (one round trip where the backend can) answers what
    the profile and feature stores answer apart, writes of another handle included (for a
    state without dedupe ids: see the feature store's contract for one with them)."""
    reader, writer = open_online_stores(), open_online_stores()
    assert reader.profile_and_record("u1") == (None, None)
    writer.profiles.put("u1", {"tier": "gold"})
    assert reader.profile_and_record("u1") == ({"tier": "gold"}, None)
    writer.features.put_many([record("u1", 7, clicks=3)])
    profile, stored = reader.profile_and_record("u1")
    assert profile == {"tier": "gold"} and stored is not None
    assert (stored.state, stored.offset) == ({"clicks": 3}, 7)
    assert stored == reader.features.get("u1")
    writer.profiles.delete("u1")
    assert reader.profile_and_record("u1") == (None, reader.features.get("u1"))
    assert reader.profile_and_record("nobody") == (None, None)
