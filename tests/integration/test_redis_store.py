"""Redis online store: behaviour specific to Redis (the shared contract is in tests/contract).

Talks to the shared Redis on 127.0.0.1:6379 under a fresh key prefix, deleted afterwards.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterator

import pytest
import redis

from tailorbot.log import open_log
from tailorbot.store import StoreError, open_store, user_digest
from tailorbot.store.base import FeatureRecord
from tailorbot.store.redis import RedisOnlineStore
from tests.helpers import REDIS_URL, closed_port, redis_namespace, wait_until

pytestmark = pytest.mark.integration


@pytest.fixture
def prefix() -> Iterator[str]:
    with redis_namespace() as prefix:
        yield prefix


def open_redis_store(prefix: str, **options: str) -> RedisOnlineStore:
    query = "".join(f"&{k}={v}" for k, v in options.items())
    store = open_store(f"{REDIS_URL}?prefix={prefix}{query}")
    assert isinstance(store, RedisOnlineStore)
    return store


def record(user_id: str, offset: int, **state: object) -> FeatureRecord:
    return FeatureRecord(user_id, dict(state), 0, offset, 1_700_000_000.0, time.time())


def run_threads(count: int, work: Callable[[int], None]) -> None:
    threads = [threading.Thread(target=work, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def test_racing_fenced_writes_keep_the_newest_offset(prefix: str) -> None:
    offsets = list(range(400))
    random.Random(7).shuffle(offsets)

    def write(i: int) -> None:
        store = open_redis_store(prefix)  # one client per writer
        for offset in offsets[i::4]:
            store.put_many([record("racer", offset, seen=offset), record(f"other{i}", offset)])
        store.close()

    run_threads(4, write)
    stored = open_redis_store(prefix).get("racer")
    assert stored is not None and stored.offset == 399 and stored.state == {"seen": 399}


def test_a_write_below_the_erasure_watermark_cannot_resurrect_the_user(prefix: str) -> None:
    store = open_redis_store(prefix)
    store.put_many([record("u1", 3)])
    store.erase_user("u1", 0, 10)
    store.put_many([record("u1", 9, stale=True)])  # an in-flight event from before erasure
    assert store.get("u1") is None
    store.put_many([record("u1", 10, fresh=True)])  # the user came back after erasure
    assert store.get("u1").state == {"fresh": True}


def test_ttls_apply_to_records_and_decisions(prefix: str) -> None:
    store = open_redis_store(prefix, record_ttl="0.3", decision_ttl="3600")
    store.put_many([record("u1", 1)])
    store.put_decision("d1", "u1", {"variant": "a"})
    client = redis.Redis.from_url(REDIS_URL)
    assert 0 < client.pttl(f"{prefix}:decision:d1") <= 3_600_000
    assert 0 < client.pttl(f"{prefix}:user:u1:decisions") <= 3_600_000
    wait_until(lambda: store.get("u1") is None, "the record to expire")
    assert store.get_decision("d1") == {"variant": "a"}


def test_no_ttl_by_default(prefix: str) -> None:
    store = open_redis_store(prefix)
    store.put_many([record("u1", 1)])
    store.put_decision("d1", "u1", {})
    client = redis.Redis.from_url(REDIS_URL)
    assert client.pttl(f"{prefix}:rec:u1") == -1
    assert client.pttl(f"{prefix}:decision:d1") == -1


def test_erasure_leaves_no_key_or_value_mentioning_the_user(prefix: str) -> None:
    url = f"{REDIS_URL}?prefix={prefix}"
    log, store = open_log(url, partitions=2), open_redis_store(prefix)
    secret = "erase-me-7731"
    log.append([(secret, b'{"text": "hi"}'), ("someone-else", b"{}")])
    store.put_many([record(secret, 0, topic="billing"), record("someone-else", 1)])
    store.put_profile(secret, {"tier": "gold"})
    store.put_decision("dec-1", secret, {"user_id": secret})
    store.put_decision("dec-2", secret, {"user_id": secret})
    store.record_feedback("dec-1", {"rating": 5})
    store.increment("bandit", {"a": 1.0})

    watermark = log.erase_user(secret)
    store.erase_user(secret, log.partition_for(secret), watermark)

    client = redis.Redis.from_url(REDIS_URL)
    contents = {key: stored_bytes(client, key) for key in client.scan_iter(match=f"{prefix}:*")}
    assert not [key for key in contents if secret.encode() in key]
    assert not [key for key, value in contents.items() if secret.encode() in value]
    assert [key for key, value in contents.items() if b"someone-else" in value]  # scan sees values
    assert client.hget(f"{prefix}:erased", user_digest(secret)) == str(watermark).encode()
    assert store.get_decision("dec-1") is None and store.get_profile(secret) is None
    assert store.erasure_watermarks([secret, "someone-else"]) == {secret: watermark}


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


def test_a_second_erasure_never_lowers_the_watermark(prefix: str) -> None:
    store = open_redis_store(prefix)
    store.erase_user("u1", 0, 10)
    store.erase_user("u1", 0, 4)
    assert store.erasure_watermarks(["u1"]) == {"u1": 10}


def test_every_operation_raises_store_error_when_redis_is_unreachable() -> None:
    store = open_store(f"redis://127.0.0.1:{closed_port()}/0?connect_timeout=0.5")
    calls = [
        store.ping,
        lambda: store.get("u1"),
        lambda: store.put_many([record("u1", 1)]),
        lambda: store.get_profiles(["u1"]),
        lambda: store.put_decision("d1", "u1", {}),
        lambda: store.record_feedback("d1", {}),
        lambda: store.increment("ns", {"a": 1.0}),
        lambda: store.erase_user("u1", 0, 1),
        lambda: store.erasure_watermarks(["u1"]),
    ]
    for call in calls:
        with pytest.raises(StoreError, match="redis"):
            call()


def test_bad_url_options_are_named() -> None:
    with pytest.raises(ValueError, match="record_ttl='0': must be a positive number"):
        open_store(f"{REDIS_URL}?record_ttl=0")
    with pytest.raises(ValueError, match="unknown Redis URL option.*'ttl'"):
        open_store(f"{REDIS_URL}?ttl=5")
