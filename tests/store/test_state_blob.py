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
from tailorbot.store.state_blob import (
    APART_AT,
    decode_served,
    decode_state,
    encode_state,
    ids_apart,
    keeps_apart,
)
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
    blob, ids = encode_state(STATE, apart=True)
    assert blob == orjson.dumps(SERVED) + b"\0" and ids == STATE["seen"] and ids_apart(blob)
    assert decode_state(blob) == (SERVED, True) and decode_served(blob) == SERVED
    assert decode_state(b"head" + blob, 4) == (SERVED, True)
    # a few ids stay in the blob, after the byte
    assert encode_state(STATE, apart=False) == (IDS_IN_BLOB, None) and not ids_apart(IDS_IN_BLOB)
    # a state without the key (no feature state) is one document; any mapping encodes
    assert encode_state({"n": 1}, apart=True) == (b'{"n":1}', None)
    assert decode_state(b'{"n":1}') == ({"n": 1}, False)
    assert encode_state(MappingProxyType(STATE), apart=True) == (blob, ids)
    with pytest.raises(TypeError, match="'seen' must map event ids to times"):
        encode_state({"seen": "here"}, apart=False)
    with pytest.raises(TypeError, match="JSON-serialisable"):
        encode_state({"n": object()}, apart=False)


def test_ids_go_apart_from_apart_at_and_stay_apart() -> None:
    few = {"seen": {str(i): float(i) for i in range(APART_AT - 1)}}
    assert not keeps_apart(few, None) and keeps_apart(few, UNCHANGED)
    assert keeps_apart({"seen": {**few["seen"], "one more": 1.0}}, None)
    assert not keeps_apart({"n": 1}, None)


def test_the_older_layouts_read_with_their_ids() -> None:
    for old in (IDS_IN_BLOB, ONE_DOCUMENT, ONE_DOCUMENT.decode()):  # (the first: a few ids)
        assert decode_state(old) == (STATE, False)
    assert decode_served(IDS_IN_BLOB) == SERVED
    assert decode_served(ONE_DOCUMENT) == STATE  # one document: read whole, as before


def test_a_value_with_a_nul_stays_escaped() -> None:
    blob, _ = encode_state({"n": "a\0b", "seen": {"x\0y": 1.0}}, apart=True)
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
    # written again, whole (its dedupe None): a few ids in the blob, after the byte
    read.state["seen"]["e3"] = 3.0
    read.offset = 4
    features.put_many([read])
    again = features.get("u1")
    assert again is not None and again.dedupe is None
    assert again.state["seen"] == {"e1": 1.0, "e2": 2.0, "e3": 3.0}
    assert stores.profile_and_record("u1")[1].state == SERVED  # type: ignore[union-attr]
    # many: apart, and from now on a delta adds to them
    again.state["seen"].update({f"x{i}": 10.0 + i for i in range(APART_AT)})
    again.offset = 5
    features.put_many([again])
    again.mark_written()
    assert again.dedupe == UNCHANGED and features.get("u1") == again
    again.state["seen"]["e4"] = 4.0
    again.offset, again.dedupe = 6, DedupeDelta({"e4": 4.0})
    features.put_many([again])
    assert features.get("u1").state["seen"] == again.state["seen"]  # type: ignore[union-attr]
