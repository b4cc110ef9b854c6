"""The Redis stores read a decision's user in one round trip."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tailorbot.store.base import Stores
from tests.contract.conftest import record, redis_store


@pytest.fixture
def redis_stores(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Stores]:
    stores = redis_store(request, tmp_path)()
    yield stores
    stores.close()


def test_profile_and_record_is_one_command(
    redis_stores: Stores, monkeypatch: pytest.MonkeyPatch
) -> None:
    redis_stores.profiles.put("u1", {"tier": "gold"})
    redis_stores.features.put_many([record("u1", 3, clicks=1)])
    client = redis_stores.features.client  # type: ignore[attr-defined]
    commands: list[Any] = []
    send = client.execute_command

    def counted(*args: Any, **options: Any) -> Any:
        commands.append(args[0])
        return send(*args, **options)

    monkeypatch.setattr(client, "execute_command", counted)
    profile, stored = redis_stores.profile_and_record("u1")
    assert profile == {"tier": "gold"} and stored is not None and stored.offset == 3
    assert commands == ["MGET"]
