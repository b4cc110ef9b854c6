"""The state's blob, its dedupe ids apart; states stored in the two older layouts still read,
in both backends, and take the new one at their next write."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from types import MappingProxyType

import orjson
import pytest

from tailorbot.store import open_stores
from tailorbot.store.base import UNCHANGED, DedupeDelta, FeatureRecord, Stores
from tailorbot.store.redis import DEDUPE, RECORD
from tailorbot.store.sqlite import SCHEMA
from tailorbot.store.state_blob import decode_served, decode_state, encode_state
from tests.contract.conftest import redis_store

STATE = {"n": 2, "seen": {"e1": 1.0, "e2": 2.0}, "ts": [1.0, 2.0]}
SERVED = {"n": 2, "ts": [1.0, 2.0]}
IDS_IN_BLOB = orjson.dumps(SERVED) + b"\0" + orjson.dumps(STATE["seen"])  # 2026-12-02
ONE_DOCUMENT = orjson.dumps(STATE)  # before


@pytest.fixture
def redis_stores(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Stores]:
    stores = redis_store(request, tmp_path)()
    yield stores
    stores.close()


def test_the_blob_leaves_the_ids_apart_and_says_so() -> None:
    blob, ids = encode_state(STATE)
    assert blob == orjson.dumps(SERVED) + b"\0" and ids == STATE["seen"]
    assert decode_state(blob) == (SERVED, True) and decode_served(blob) == SERVED
    assert decode_state(b"head" + blob, 4) == (SERVED, True)
    # a state without the key (no feature state) is one document; any mapping encodes
    assert encode_state({"n": 1}) == (b'{"n":1}', None)
    assert decode_state(b'{"n":1}') == ({"n": 1}, False)
    assert encode_state(MappingProxyType(STATE)) == (blob, ids)
    with pytest.raises(TypeError, match="'seen' must map event ids to times"):
        encode_state({"seen": "here"})
    with pytest.raises(TypeError, match="JSON-serialisable"):
        encode_state({"n": object()})


def test_the_older_layouts_read_with_their_ids() -> None:
    for old in (IDS_IN_BLOB, ONE_DOCUMENT, ONE_DOCUMENT.decode()):
        assert decode_state(old) == (STATE, False)
    assert decode_served(IDS_IN_BLOB) == SERVED
    assert decode_served(ONE_DOCUMENT) == STATE  # one document: read whole, as before


def test_a_value_with_a_nul_stays_escaped() -> None:
    blob, _ = encode_state({"n": "a\0b", "seen": {"x\0y": 1.0}})
    assert blob.count(b"\0") == 1
    assert decode_state(blob) == ({"n": "a\0b"}, True)


@pytest.mark.parametrize("old", [IDS_IN_BLOB, ONE_DOCUMENT], ids=["ids-in-blob", "one-document"])
def test_a_sqlite_state_stored_before_reads_and_is_rewritten_whole(
    tmp_path: Path, old: bytes
) -> None:
    path = tmp_path / "store.db"
    conn = sqlite3.connect(path)
    conn.executescript(SCHEMA)
    conn.execute("INSERT INTO feature_records VALUES ('u1', ?, 0, 3, 1.0, 2.0, 1)", (old,))
    conn.commit()
    conn.close()
    stores = open_stores(f"sqlite:///{path}")
    served = SERVED if old == IDS_IN_BLOB else STATE
    _reads_and_is_rewritten_whole(stores, FeatureRecord("u1", STATE, 0, 3, 1.0, 2.0), served)
    stores.close()


def test_a_redis_record_stored_before_reads_and_is_rewritten_whole(redis_stores: Stores) -> None:
    features = redis_stores.features
    fields = {"partition": 0, "offset": 3, "event_time": 1.0, "updated_at": 2.0, "version": 1}
    layouts = {  # the stored value, and what a decision reads of it
        b"%020d" % 3 + orjson.dumps({"state": STATE, **fields}): STATE,
        b"%020d%b\0%b" % (3, orjson.dumps(fields), IDS_IN_BLOB): SERVED,
    }
    for old, served in layouts.items():
        features.client.set(features.key(RECORD, "u1"), old)  # type: ignore[attr-defined]
        expected = FeatureRecord("u1", STATE, 0, 3, 1.0, 2.0)
        _reads_and_is_rewritten_whole(redis_stores, expected, served)
        features.client.delete(features.key(RECORD, "u1"), features.key(DEDUPE, "u1"))  # type: ignore[attr-defined]


def _reads_and_is_rewritten_whole(
    stores: Stores, expected: FeatureRecord, served: dict[str, object]
) -> None:
    features = stores.features
    read = features.get("u1")
    assert read == expected and read is not None and read.dedupe is None  # write them all
    assert stores.profile_and_record("u1")[1] == FeatureRecord("u1", served, 0, 3, 1.0, 2.0)
    # written with a delta (as a worker would from a record it kept), the ids would be lost:
    # a record stored before comes back without one (above), and is written whole
    read.state["seen"]["e3"] = 3.0
    read.offset = 4
    features.put_many([read])
    again = features.get("u1")
    assert again is not None and again.dedupe == UNCHANGED
    assert again.state["seen"] == {"e1": 1.0, "e2": 2.0, "e3": 3.0}
    assert stores.profile_and_record("u1")[1].state == SERVED  # type: ignore[union-attr]
    # and from now on, a delta adds to them
    again.state["seen"]["e4"] = 4.0
    again.offset, again.dedupe = 5, DedupeDelta({"e4": 4.0})
    features.put_many([again])
    assert features.get("u1").state["seen"] == {"e1": 1.0, "e2": 2.0, "e3": 3.0, "e4": 4.0}  # type: ignore[union-attr]
