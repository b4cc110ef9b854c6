"""States stored before the dedupe ids were kept apart still read, in both backends."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from types import MappingProxyType

import orjson
import pytest

from tailorbot.store import open_stores
from tailorbot.store.base import FeatureRecord, Stores
from tailorbot.store.redis import RECORD
from tailorbot.store.sqlite import SCHEMA
from tailorbot.store.state_blob import decode_served, decode_state, encode_state
from tests.contract.conftest import redis_store

STATE = {"n": 2, "seen": {"e1": 1.0, "e2": 2.0}, "ts": [1.0, 2.0]}
SERVED = {"n": 2, "ts": [1.0, 2.0]}


@pytest.fixture
def redis_stores(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Stores]:
    stores = redis_store(request, tmp_path)()
    yield stores
    stores.close()


def test_the_blob_round_trips_and_serves_without_the_ids() -> None:
    blob = encode_state(STATE)
    assert blob.count(b"\0") == 1 and b"e1" not in blob[: blob.index(b"\0")]
    assert decode_state(blob) == STATE and decode_served(blob) == SERVED
    prefixed = b"head" + blob
    assert decode_state(prefixed, 4) == STATE and decode_served(prefixed, 4) == SERVED
    # a state without the key (no feature state) is one document; any mapping encodes
    assert encode_state({"n": 1}) == b'{"n":1}' and decode_state(b'{"n":1}') == {"n": 1}
    assert encode_state(MappingProxyType(STATE)) == blob


def test_an_id_or_value_with_a_nul_stays_escaped() -> None:
    state = {"n": "a\0b", "seen": {"x\0y": 1.0}}
    blob = encode_state(state)
    assert blob.count(b"\0") == 1
    assert decode_state(blob) == state and decode_served(blob) == {"n": "a\0b"}


def test_a_sqlite_state_stored_whole_reads_both_ways(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    conn = sqlite3.connect(path)
    conn.executescript(SCHEMA)
    conn.execute(
        "INSERT INTO feature_records VALUES ('u1', ?, 0, 3, 1.0, 2.0, 1)", (orjson.dumps(STATE),)
    )
    conn.commit()
    conn.close()
    stores = open_stores(f"sqlite:///{path}")
    assert stores.features.get("u1") == FeatureRecord("u1", STATE, 0, 3, 1.0, 2.0, 1)
    assert stores.profile_and_record("u1")[1] == FeatureRecord("u1", STATE, 0, 3, 1.0, 2.0, 1)
    stores.close()


def test_a_redis_record_stored_whole_reads_both_ways(redis_stores: Stores) -> None:
    features = redis_stores.features
    fields = {"partition": 1, "offset": 3, "event_time": 1.0, "updated_at": 2.0, "version": 1}
    whole = b"%020d" % 3 + orjson.dumps({"state": STATE, **fields})
    expected = FeatureRecord("u1", STATE, 1, 3, 1.0, 2.0, 1)
    features.client.set(features.key(RECORD, "u1"), whole)  # type: ignore[attr-defined]
    assert features.get("u1") == expected
    assert redis_stores.profile_and_record("u1")[1] == expected
    # written again, it is stored apart, and fenced by its offset as before
    features.put_many([FeatureRecord("u1", STATE, 1, 2, 0.0, 0.0)])
    assert features.get("u1") == expected
    features.put_many([FeatureRecord("u1", STATE, 1, 4, 0.0, 0.0)])
    assert redis_stores.profile_and_record("u1")[1] == FeatureRecord("u1", SERVED, 1, 4, 0.0, 0.0)
