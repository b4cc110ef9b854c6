"""The online stores on Redis: one small class per concern over one shared client (the
decision and counter concerns, which the decision plane writes, are in
:mod:`tailorbot.store.redis_shared`).

Keys (``{prefix}`` from the URL, default ``tailorbot``):

* ``{prefix}:rec:{user_id}`` — the record: its log offset as 20 decimal digits, the rest of
  its fields as JSON, a NUL byte, then its state (:mod:`tailorbot.store.state_blob`; one
  value, so a batch of users is one ``MGET``). A Lua script writes a batch,
  each record only when its offset is newer than the stored one (read with ``GETRANGE``) and
  not below the user's erasure watermark, so neither a stale worker nor an event of an erased
  user still in flight can bring old state back.
* ``{prefix}:erased`` — hash: erasure digest of a user id -> log watermark;
  ``{prefix}:erased_at`` — the same digest -> time of the erasure (epoch seconds). Nothing
  else about an erased user is kept. The feature erase script deletes the record and raises
  both (they only grow) in one step.
* ``{prefix}:profile:{user_id}`` — the profile (JSON).
* ``{prefix}:decision:{decision_id}`` — hash: ``u`` user, ``r`` record, ``f`` feedback (JSON);
  ``{prefix}:user:{user_id}:decisions`` — the user's decision ids; the decisions erase script
  deletes every decision listed there, and the set.
* ``{prefix}:counters:{namespace}`` — hash of floats, added to with ``HINCRBYFLOAT`` (additions
  commute: concurrent workers lose nothing).

URL options: ``record_ttl`` (seconds; a record not rewritten for that long expires, i.e. users
idle that long lose their features) and ``decision_ttl`` (seconds; feedback can arrive until
then). Both default to never. Single primary only (no Cluster: scripts span users' keys).

>>> stores = open_stores("redis://127.0.0.1:6379/0?prefix=doc&decision_ttl=86400")
>>> stores.decisions.decision_ttl, stores.features.record_ttl
(86400.0, None)
>>> stores.close()
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import orjson
import redis

from tailorbot._redis import optional_seconds, parse_url, plain_prefix
from tailorbot.events.erasure import user_digest
from tailorbot.store.base import (
    Erasure,
    EventIncrement,
    FeatureRecord,
    FeatureStore,
    ProfileStore,
    Stores,
)
from tailorbot.store.redis_shared import (
    ERASED_AT,
    RedisConcern,
    RedisCounterStore,
    RedisDecisionStore,
    counter_args,
    guard,
)
from tailorbot.store.state_blob import SEPARATOR, decode_served, decode_state, encode_state

PUT_CHUNK = 500  # records per script call: bounds how long one call holds the server

OFFSET_DIGITS = 20  # the fixed-width offset that heads a stored record
RECORD, PROFILE = "rec", "profile"  # the key kinds of a user's record and profile (above)

# KEYS: erased hash, then one record key per item. ARGV: ttl ms (0: none), then per item
# (erasure digest, offset, stored value). Returns how many were written.
_PUT = """
local ttl = tonumber(ARGV[1])
local written = 0
for i = 2, #KEYS do
  local a = 3 * (i - 2) + 2
  local offset = tonumber(ARGV[a + 1])
  local stored = redis.call('GETRANGE', KEYS[i], 0, 19)
  local erased = redis.call('HGET', KEYS[1], ARGV[a])
  if (stored == '' or offset > tonumber(stored)) and (not erased or offset >= tonumber(erased)) then
    if ttl > 0 then
      redis.call('SET', KEYS[i], ARGV[a + 2], 'PX', ttl)
    else
      redis.call('SET', KEYS[i], ARGV[a + 2])
    end
    written = written + 1
  end
end
return written
"""

# One user's record and the counters of its events, in one step. KEYS: erased hash, record,
# then one counters hash per (event, namespace). ARGV: ttl, digest, offset, record, then per
# counters hash: the event's offset, the number of counters and their name/delta pairs.
# Only the events after the stored offset add: another worker's write already counted the rest.
_PUT_COUNTED = """
local ttl = tonumber(ARGV[1])
local offset = tonumber(ARGV[3])
local stored = redis.call('GETRANGE', KEYS[2], 0, 19)
local erased = redis.call('HGET', KEYS[1], ARGV[2])
if stored ~= '' and offset <= tonumber(stored) then return 0 end
if erased and offset < tonumber(erased) then return 0 end
if ttl > 0 then
  redis.call('SET', KEYS[2], ARGV[4], 'PX', ttl)
else
  redis.call('SET', KEYS[2], ARGV[4])
end
local seen = -1
if stored ~= '' then seen = tonumber(stored) end
local i = 5
for k = 3, #KEYS do
  local event_offset = tonumber(ARGV[i])
  local n = tonumber(ARGV[i + 1])
  i = i + 2
  for _ = 1, n do
    if event_offset > seen then
      redis.call('HINCRBYFLOAT', KEYS[k], ARGV[i], ARGV[i + 1])
    end
    i = i + 2
  end
end
return 1
"""

# KEYS: record, erased hash, erasure times hash. ARGV: digest, watermark, time. Both grow only.
_ERASE_FEATURES = """
redis.call('DEL', KEYS[1])
for i = 2, 3 do
  local old = redis.call('HGET', KEYS[i], ARGV[1])
  if not old or tonumber(ARGV[i]) > tonumber(old) then
    redis.call('HSET', KEYS[i], ARGV[1], ARGV[i])
  end
end
return 1
"""


def open_stores(url: str, **options: Any) -> Stores:
    """Open ``redis://host:port/db?prefix=tailorbot&record_ttl=...&decision_ttl=...`` with one
    client for all four stores; keyword ``options`` override the URL's."""
    known = {"record_ttl": optional_seconds, "decision_ttl": optional_seconds}
    client, typed = parse_url(url, known, options)
    prefix = typed.get("prefix", "tailorbot")
    try:
        return Stores(
            features=RedisFeatureStore(client, prefix, typed.get("record_ttl")),
            profiles=RedisProfileStore(client, prefix),
            decisions=RedisDecisionStore(client, prefix, typed.get("decision_ttl")),
            counters=RedisCounterStore(client, prefix),
            closer=client.close,
            user_reader=RedisUserReader(client, prefix),
        )
    except BaseException:
        client.close()
        raise


class RedisFeatureStore(RedisConcern, FeatureStore):
    """Feature records (fenced in Lua) and erasure watermarks."""

    def __init__(
        self, client: redis.Redis, prefix: str = "tailorbot", record_ttl: float | None = None
    ) -> None:
        self.client = client
        self.prefix = plain_prefix(prefix)
        self.record_ttl = optional_seconds(record_ttl)
        self._put_counted = client.register_script(_PUT_COUNTED)
        self._put = client.register_script(_PUT)
        self._erase = client.register_script(_ERASE_FEATURES)

    def get(self, user_id: str) -> FeatureRecord | None:
        return self.get_many([user_id]).get(user_id)

    @guard
    def get_many(self, user_ids: Iterable[str]) -> dict[str, FeatureRecord]:
        ids = list(dict.fromkeys(user_ids))
        if not ids:
            return {}
        blobs: list[Any] = self.client.mget([self.key(RECORD, user_id) for user_id in ids])
        return {
            user_id: _decode_record(user_id, blob)
            for user_id, blob in zip(ids, blobs, strict=True)
            if blob is not None
        }

    @guard
    def put_many(
        self,
        records: Sequence[FeatureRecord],
        increments: Mapping[str, Sequence[EventIncrement]] | None = None,
    ) -> None:
        increments = increments or {}
        ttl_ms = int(self.record_ttl * 1000) if self.record_ttl else 0
        plain = [r for r in records if not increments.get(r.user_id)]
        pipe = self.client.pipeline(transaction=False)
        for start in range(0, len(plain), PUT_CHUNK):
            chunk = plain[start : start + PUT_CHUNK]
            keys = [self.key("erased")] + [self.key(RECORD, r.user_id) for r in chunk]
            args: list[str | int | bytes] = [ttl_ms]
            for r in chunk:
                args += [user_digest(r.user_id), int(r.offset), _encode_record(r)]
            self._put(keys=keys, args=args, client=pipe)
        for r in records:
            if increments.get(r.user_id):
                keys, args = self._counted_call(r, increments[r.user_id], ttl_ms)
                self._put_counted(keys=keys, args=args, client=pipe)
        if records:
            pipe.execute()

    def _counted_call(
        self, record: FeatureRecord, events: Sequence[EventIncrement], ttl_ms: int
    ) -> tuple[list[str], list[Any]]:
        keys = [self.key("erased"), self.key(RECORD, record.user_id)]
        args: list[Any] = [ttl_ms, user_digest(record.user_id), int(record.offset)]
        args.append(_encode_record(record))
        for offset, by_namespace in events:
            for namespace, deltas in by_namespace.items():
                pairs = counter_args(deltas)
                keys.append(self.key("counters", namespace))
                args += [int(offset), len(deltas), *pairs]
        return keys, args

    @guard
    def erase(
        self, user_id: str, partition: int, watermark: int, erased_at: float | None = None
    ) -> None:
        keys = [self.key(RECORD, user_id), self.key("erased"), self.key(ERASED_AT)]
        at = time.time() if erased_at is None else erased_at
        self._erase(keys=keys, args=[user_digest(user_id), int(watermark), repr(float(at))])

    @guard
    def erasures(self, user_ids: Iterable[str]) -> dict[str, Erasure]:
        ids = list(dict.fromkeys(user_ids))
        if not ids:
            return {}
        digests = [user_digest(u) for u in ids]
        pipe = self.client.pipeline(transaction=False)
        pipe.hmget(self.key("erased"), digests)
        pipe.hmget(self.key(ERASED_AT), digests)
        marks, times = pipe.execute()
        return {
            u: Erasure(int(m), float(t) if t is not None else 0.0)
            for u, m, t in zip(ids, marks, times, strict=True)
            if m is not None
        }


class RedisUserReader(RedisConcern):
    """A decision's reads of one user, the profile and the feature record, in one ``MGET``
    (two round trips otherwise; see :meth:`Stores.profile_and_record`)."""

    def __init__(self, client: redis.Redis, prefix: str = "tailorbot") -> None:
        self.client = client
        self.prefix = plain_prefix(prefix)

    @guard
    def __call__(self, user_id: str) -> tuple[dict[str, Any] | None, FeatureRecord | None]:
        blobs: list[Any] = self.client.mget([self.key(PROFILE, user_id), self.key(RECORD, user_id)])
        profile, record = blobs
        return (
            orjson.loads(profile) if profile is not None else None,
            _decode_record(user_id, record, served=True) if record is not None else None,
        )


class RedisProfileStore(RedisConcern, ProfileStore):
    """User profiles, one JSON string per user."""

    def __init__(self, client: redis.Redis, prefix: str = "tailorbot") -> None:
        self.client = client
        self.prefix = plain_prefix(prefix)

    def get(self, user_id: str) -> dict[str, Any] | None:
        return self.get_many([user_id]).get(user_id)

    @guard
    def get_many(self, user_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        ids = list(dict.fromkeys(user_ids))
        if not ids:
            return {}
        blobs = self.client.mget([self.key(PROFILE, u) for u in ids])
        return {u: orjson.loads(b) for u, b in zip(ids, blobs, strict=True) if b is not None}

    @guard
    def put(self, user_id: str, profile: Mapping[str, Any]) -> None:
        self.client.set(self.key(PROFILE, user_id), orjson.dumps(dict(profile)))

    @guard
    def delete(self, user_id: str) -> None:
        self.client.delete(self.key(PROFILE, user_id))


def _encode_record(record: FeatureRecord) -> bytes:
    if not 0 <= record.offset < 10**OFFSET_DIGITS:
        raise ValueError(f"a record's offset must be >= 0, got {record.offset}")
    meta = {
        "partition": record.partition,
        "offset": record.offset,
        "event_time": record.event_time,
        "updated_at": record.updated_at,
        "version": record.version,
    }
    head = b"%020d%b" % (record.offset, orjson.dumps(meta))
    return head + SEPARATOR + encode_state(record.state)


def _decode_record(user_id: str, blob: bytes, *, served: bool = False) -> FeatureRecord:
    """The record in ``blob``; ``served``: its state without the dedupe ids (a decision's
    read, see :mod:`tailorbot.store.state_blob`)."""
    end = blob.find(SEPARATOR, OFFSET_DIGITS)
    if end < 0:  # written before the state was stored apart: one document, state inside
        fields = orjson.loads(memoryview(blob)[OFFSET_DIGITS:])
        return FeatureRecord(user_id=user_id, **fields)
    state = (decode_served if served else decode_state)(blob, end + 1)
    return FeatureRecord(user_id, state, **orjson.loads(memoryview(blob)[OFFSET_DIGITS:end]))
