"""Redis online store: behaviour specific to Redis (the shared contract is in tests/contract).

Talks to the shared Redis on 127.0.0.1:6379 under a fresh key prefix, deleted afterwards.
"""

from __future__ import annotations

import random
from collections.abc import Iterator

import pytest
import redis

from tailorbot.events.erasure import user_digest
from tailorbot.log import open_log
from tailorbot.store import StoreError, Stores, open_stores
from tailorbot.store.base import DedupeDelta, FeedbackMark
from tailorbot.store.redis import RedisDecisionStore, RedisFeatureStore
from tailorbot.store.redis_shared import FEEDBACK_SCRIPT_MARKS
from tailorbot.store.state_blob import APART_AT
from tests.contract.conftest import record, run_threads
from tests.helpers import REDIS_URL, closed_port, redis_namespace, wait_until

MANY_IDS = {f"e{i}": float(i) for i in range(APART_AT)}  # enough to be kept apart

pytestmark = pytest.mark.integration


@pytest.fixture
def prefix() -> Iterator[str]:
    with redis_namespace() as prefix:
        yield prefix


def open_redis_stores(prefix: str, **options: str) -> Stores:
    query = "".join(f"&{k}={v}" for k, v in options.items())
    stores = open_stores(f"{REDIS_URL}?prefix={prefix}{query}")
    assert isinstance(stores.features, RedisFeatureStore)
    return stores


def test_racing_fenced_writes_keep_the_newest_offset(prefix: str) -> None:
    offsets = list(range(400))
    random.Random(7).shuffle(offsets)

    def write(i: int) -> None:
        stores = open_redis_stores(prefix)  # one client per writer
        for offset in offsets[i::4]:
            stores.features.put_many(
                [record("racer", offset, mark=offset), record(f"other{i}", offset)]
            )
        stores.close()

    run_threads(4, write)
    stores = open_redis_stores(prefix)
    stored = stores.features.get("racer")
    assert stored is not None and stored.offset == 399 and stored.state == {"mark": 399}
    stores.close()


def test_the_four_stores_share_one_client_closed_once(prefix: str) -> None:
    stores = open_redis_stores(prefix)
    concerns = (stores.features, stores.profiles, stores.decisions, stores.counters)
    clients = {id(getattr(store, "client", None)) for store in concerns}
    assert len(clients) == 1 and isinstance(stores.features, RedisFeatureStore)
    stores.ping()
    stores.close()


def test_ttls_apply_to_records_and_decisions(prefix: str) -> None:
    stores = open_redis_stores(prefix, record_ttl="0.3", decision_ttl="3600")
    assert isinstance(stores.decisions, RedisDecisionStore)
    assert stores.decisions.decision_ttl == 3600.0
    stores.features.put_many([record("u1", 1, seen=MANY_IDS)])
    stores.decisions.put("d1", "u1", {"variant": "a"})
    client = redis.Redis.from_url(REDIS_URL)
    assert client.pttl(f"{prefix}:dedupe:u1") != -1  # the dedupe ids expire with the record
    assert 0 < client.pttl(f"{prefix}:decision:d1") <= 3_600_000
    assert 0 < client.pttl(f"{prefix}:user:u1:decisions") <= 3_600_000
    wait_until(lambda: stores.features.get("u1") is None, "the record to expire")
    wait_until(lambda: not client.exists(f"{prefix}:dedupe:u1"), "its dedupe ids to expire")
    assert stores.decisions.get("d1") == {"variant": "a"}
    stores.close()


def test_a_write_without_a_ttl_takes_it_off_the_dedupe_ids_too(prefix: str) -> None:
    """A sorted set keeps its TTL through ZADD: a store opened without ``record_ttl`` (an
    operator turned it off) must take it off, or the ids of active users would expire."""
    with_ttl = open_redis_stores(prefix, record_ttl="3600")
    with_ttl.features.put_many([record("u1", 1, seen=MANY_IDS)])
    client = redis.Redis.from_url(REDIS_URL)
    assert client.pttl(f"{prefix}:dedupe:u1") > 0
    with_ttl.close()
    without = open_redis_stores(prefix)
    written = without.features.get("u1")
    assert written is not None and written.dedupe is not None  # apart: a delta follows
    written.offset, written.dedupe = 2, DedupeDelta({"new": 1e9})
    without.features.put_many([written])
    assert client.pttl(f"{prefix}:rec:u1") == -1 and client.pttl(f"{prefix}:dedupe:u1") == -1
    without.close()


def test_no_ttl_by_default(prefix: str) -> None:
    stores = open_redis_stores(prefix)
    stores.features.put_many([record("u1", 1, seen=MANY_IDS)])
    stores.decisions.put("d1", "u1", {})
    client = redis.Redis.from_url(REDIS_URL)
    assert client.pttl(f"{prefix}:rec:u1") == -1
    assert client.pttl(f"{prefix}:dedupe:u1") == -1
    assert client.pttl(f"{prefix}:decision:d1") == -1
    stores.close()


def test_erasure_leaves_no_key_or_value_mentioning_the_user(prefix: str) -> None:
    url = f"{REDIS_URL}?prefix={prefix}"
    log, stores = open_log(url, partitions=2), open_redis_stores(prefix)
    secret = "erase-me-7731"
    log.append([(secret, b'{"text": "hi"}'), ("someone-else", b"{}")])
    ids = {f"event-of-erase-me-{i}": float(i) for i in range(APART_AT)}  # kept apart
    stores.features.put_many(
        [record(secret, 0, topic="billing", seen=ids), record("someone-else", 1)]
    )
    assert client_keys(prefix, "dedupe") == {f"{prefix}:dedupe:{secret}".encode()}
    stores.profiles.put(secret, {"tier": "gold"})
    stores.decisions.put("dec-1", secret, {"user_id": secret})
    stores.decisions.put("dec-2", secret, {"user_id": secret})
    stores.decisions.record_feedback("dec-1", {"rating": 5})
    stores.counters.increment("bandit", {"a": 1.0})

    watermark = log.erase_user(secret)
    stores.features.erase(secret, log.partition_for(secret), watermark)
    stores.profiles.delete(secret)
    stores.decisions.erase_user(secret)

    client = redis.Redis.from_url(REDIS_URL)
    contents = {key: stored_bytes(client, key) for key in client.scan_iter(match=f"{prefix}:*")}
    assert not [key for key in contents if secret.encode() in key]
    assert not [key for key, value in contents.items() if secret.encode() in value]
    assert [key for key, value in contents.items() if b"someone-else" in value]  # scan sees values
    assert client.hget(f"{prefix}:erased", user_digest(secret)) == str(watermark).encode()
    assert stores.decisions.get("dec-1") is None and stores.profiles.get(secret) is None
    erasures = stores.features.erasures([secret, "someone-else"])
    assert erasures.keys() == {secret} and erasures[secret].watermark == watermark
    log.close()
    stores.close()


def stored_bytes(client: redis.Redis, key: bytes) -> bytes:
    """Everything stored under ``key``, whatever its type, as one byte string."""
    kind = client.type(key)
    if kind == b"string":
        return client.get(key)
    if kind == b"hash":
        return repr(client.hgetall(key)).encode()
    if kind == b"set":
        return repr(client.smembers(key)).encode()
    if kind == b"zset":
        return repr(client.zrange(key, 0, -1)).encode()
    if kind == b"stream":
        return repr(client.xrange(key)).encode()
    raise AssertionError(f"unexpected key type {kind!r} of {key!r}")


def test_every_operation_raises_store_error_when_redis_is_unreachable() -> None:
    stores = open_stores(f"redis://127.0.0.1:{closed_port()}/0?connect_timeout=0.5")
    calls = [
        stores.ping,
        lambda: stores.features.get("u1"),
        lambda: stores.features.put_many([record("u1", 1)]),
        lambda: stores.features.erase("u1", 0, 1),
        lambda: stores.features.erasures(["u1"]),
        lambda: stores.profiles.get_many(["u1"]),
        lambda: stores.profiles.put("u1", {}),
        lambda: stores.profiles.delete("u1"),
        lambda: stores.decisions.put("d1", "u1", {}),
        lambda: stores.decisions.get("d1"),
        lambda: stores.decisions.record_feedback("d1", {}),
        lambda: stores.decisions.erase_user("u1"),
        lambda: stores.counters.increment("ns", {"a": 1.0}),
        lambda: stores.counters.counters("ns"),
    ]
    for call in calls:
        with pytest.raises(StoreError, match="redis"):
            call()
    stores.close()


def test_bad_url_options_are_named() -> None:
    for bad in ("0", "inf", "nan"):
        with pytest.raises(ValueError, match=f"record_ttl='{bad}': must be a positive number"):
            open_stores(f"{REDIS_URL}?record_ttl={bad}")
    with pytest.raises(ValueError, match="unknown Redis URL option.*'ttl'"):
        open_stores(f"{REDIS_URL}?ttl=5")
    with pytest.raises(ValueError, match="prefix='a b'"):
        open_stores(f"{REDIS_URL}?prefix=a b")


def client_keys(prefix: str, kind: str) -> set[bytes]:
    return set(redis.Redis.from_url(REDIS_URL).scan_iter(match=f"{prefix}:{kind}:*"))


def test_a_feedback_batch_that_fails_writes_nothing(prefix: str) -> None:
    """Redis keeps what a failing script wrote: the batch's script reads and checks first,
    so a counters key of another type, a stored counter that is not a number or a sum that
    is not finite writes no mark, and no mark is left without what it taught."""
    stores = open_redis_stores(prefix)
    decisions = stores.decisions
    ids = [f"f{i}" for i in range(8)]
    for d in ids:
        decisions.put(d, "u1", {"variant": "short"})
    client = redis.Redis.from_url(REDIS_URL)
    client.set(f"{prefix}:counters:broken", b"not a hash")
    client.hset(f"{prefix}:counters:worded", mapping={"n": b"one"})
    client.hset(f"{prefix}:counters:full", mapping={"n": repr(1.5e308)})
    failing = [
        ({"broken": {"n": 1.0}}, "WRONGTYPE"),
        ({"worded": {"n": 1.0}}, "holds no number"),
        ({"full": {"n": 1e308}}, "not finite"),  # the stored value and the delta
        ({"fine": {"n": 1e308}}, "not finite"),  # two marks' deltas, none stored
    ]
    for k, (increments, error) in enumerate(failing):
        marks = [
            FeedbackMark(ids[2 * k], {"rating": 5}, {"fine": {"n": 1e308}, "other": {"m": 1.0}}),
            FeedbackMark(ids[2 * k + 1], {"rating": 4}, increments),
        ]
        with pytest.raises(StoreError, match=error):
            decisions.record_feedbacks(marks)
    assert all(decisions.get(d) == {"variant": "short"} for d in ids)
    assert stores.counters.counters("fine") == {} and stores.counters.counters("other") == {}
    assert client.hget(f"{prefix}:counters:full", "n") == repr(1.5e308).encode()
    stores.close()


def test_a_counter_write_that_fails_writes_nothing(prefix: str) -> None:
    """An increment, and a worker's record with its events' counters, fail whole: the
    record is not written either, so a retry counts its events."""
    stores = open_redis_stores(prefix)
    client = redis.Redis.from_url(REDIS_URL)
    client.hset(f"{prefix}:counters:worded", mapping={"n": b"one"})
    with pytest.raises(StoreError, match="holds no number"):
        stores.counters.increment("worded", {"m": 1.0, "n": 1.0})
    increments = {"u1": [(1, {"fine": {"views": 1.0}}), (2, {"worded": {"n": 1.0}})]}
    with pytest.raises(StoreError, match="holds no number"):
        stores.features.put_many([record("u1", offset=2)], increments)
    assert stores.features.get("u1") is None
    assert stores.counters.counters("fine") == {}
    assert client.hgetall(f"{prefix}:counters:worded") == {b"n": b"one"}
    client.hset(f"{prefix}:counters:worded", mapping={"n": b"2"})
    stores.features.put_many([record("u1", offset=2)], increments)
    # an event with no counters for a namespace leaves its key unread
    client.set(f"{prefix}:counters:broken", b"not a hash")
    stores.features.put_many([record("u2", offset=3)], {"u2": [(3, {"broken": {}})]})
    assert stores.features.get("u2") is not None
    assert stores.counters.counters("worded") == {"n": 3.0}
    assert stores.counters.counters("fine") == {"views": 1.0}
    stores.close()


def test_a_feedback_batch_over_one_script_keeps_its_order(prefix: str) -> None:
    """Marks go FEEDBACK_SCRIPT_MARKS to a script: a decision marked in one script and
    extended in a later one is taken in order, and the counters of every script add up."""
    stores = open_redis_stores(prefix)
    decisions = stores.decisions
    ids = [f"c{i}" for i in range(FEEDBACK_SCRIPT_MARKS + 4)]
    for d in ids:
        decisions.put(d, "u1", {"variant": "short"})
    marks = [FeedbackMark(d, {"rating": 5}, {"chunks": {"n": 1.0, "r": 0.5}}) for d in ids]
    marks.append(FeedbackMark("c0", {"rating": 5, "resolved": True}, {"chunks": {"n": 1.0}},
                              previous={"rating": 5}))  # fmt: skip
    assert decisions.record_feedbacks(marks) == [True] * len(marks)
    assert decisions.get("c0") == {"variant": "short", "feedback": {"rating": 5, "resolved": True}}
    assert stores.counters.counters("chunks") == {"n": len(ids) + 1.0, "r": len(ids) * 0.5}
    stores.close()


def test_a_refused_chunk_of_a_feedback_batch_writes_nothing_of_its_own(prefix: str) -> None:
    """Each script is one chunk of marks, written whole or not at all: when the stored
    vectors refuse a later chunk's sums, the call raises StoreError (the feedback handler
    then reads back which marks landed), the refused chunk wrote nothing, and the chunk
    before it stays written with its vectors, counted once."""
    stores = open_redis_stores(prefix)
    decisions = stores.decisions
    ids = [f"v{i}" for i in range(FEEDBACK_SCRIPT_MARKS + 4)]
    for d in ids:
        decisions.put(d, "u1", {"variant": "short"})
    marks = [
        FeedbackMark(d, {"rating": 5}, {"n": {"x": 1.0}}, None, {"bandit": {"arm/a": [1.0] * 2}})
        for d in ids[:FEEDBACK_SCRIPT_MARKS]
    ]
    marks += [
        FeedbackMark(d, {"rating": 5}, {"n": {"x": 1.0}}, None, {"bandit": {"arm/a": [1.0]}})
        for d in ids[FEEDBACK_SCRIPT_MARKS:]
    ]
    with pytest.raises(StoreError, match=r"'arm/a'.* 2 values.* 1"):
        decisions.record_feedbacks(marks)
    written = decisions.get_many(ids)
    assert [("feedback" in written[d]) for d in ids] == [True] * FEEDBACK_SCRIPT_MARKS + [False] * 4
    assert stores.counters.vectors("bandit")["arm/a"].tolist() == [16.0, 16.0]
    assert stores.counters.counters("n") == {"x": 16.0}
    stores.close()
