"""The online stores on Redis: one small class per concern over one shared client (the
decision and counter concerns, which the decision plane writes, are in
:mod:`tailorbot.store.redis_shared`).

Keys (``{prefix}`` from the URL, default ``tailorbot``):

* ``{prefix}:rec:{user_id}`` — the record: its log offset as 20 decimal digits, the rest of
  its fields as JSON, a NUL byte, then its state (:mod:`tailorbot.store.state_blob`; one
  value, so a decision's read is one ``MGET``, with the profile). A Lua script writes a batch,
  each record only when its offset is newer than the stored one (read with ``GETRANGE``) and
  not below the user's erasure watermark, so neither a stale worker nor an event of an erased
  user still in flight can bring old state back.
* ``{prefix}:dedupe:{user_id}`` — sorted set: the state's dedupe ids when they are kept
  apart, scored by their event times; the same script adds a record's new ids and drops
  those below its floor, with the record's TTL. The worker reads a user's record and set in
  one Lua script. Run Redis with ``maxmemory-policy noeviction``: a set evicted while its
  record stays would forget which events were applied.
* ``{prefix}:erased`` — hash: erasure digest of a user id -> log watermark;
  ``{prefix}:erased_at`` — the same digest -> time of the erasure (epoch seconds). Nothing
  else about an erased user is kept. The feature erase script deletes the record and raises
  both (they only grow) in one step.
* ``{prefix}:profile:{user_id}`` — the profile (JSON).
* ``{prefix}:decision:{decision_id}`` — hash: ``u`` user, ``r`` record, ``f`` feedback (JSON);
  ``{prefix}:user:{user_id}:decisions`` — the user's decision ids; the decisions erase script
  deletes every decision listed there, and the set.
* ``{prefix}:counters:{namespace}`` — hash of floats, added to by scripts, as doubles
  (``redis_counters.ADD_COUNTERS``; additions commute: concurrent workers lose nothing).
* ``{prefix}:vectors:{namespace}`` — hash of vector counters, each little-endian doubles,
  added to element by element by scripts (``redis_counters.ADD_VECTORS``).
* ``{prefix}:stamps`` — hash: each counters or vectors hash's key -> how many script calls
  have added to it (``CounterStore.stamps``; raised by the same call).

URL options: ``record_ttl`` (seconds; a record not rewritten for that long expires, i.e. users
idle that long lose their features; keep it above the stream worker's state cache idle time,
600 s, or a worker may go on from a state whose stored ids expired) and ``decision_ttl``
(seconds; feedback can arrive until then). Both default to never. Single primary only (no
Cluster: scripts span users' keys).

>>> stores = open_stores("redis://127.0.0.1:6379/0?prefix=doc&decision_ttl=86400")
>>> stores.decisions.decision_ttl, stores.features.record_ttl
(86400.0, None)
>>> stores.close()
"""

from __future__ import annotations

import time
from collections.abc import ItemsView, Iterable, Mapping, Sequence
from typing import Any

import orjson
import redis

from tailorbot._redis import optional_seconds, parse_address, plain_prefix
from tailorbot.events.erasure import user_digest
from tailorbot.store.base import (
    UNCHANGED,
    Erasure,
    EventIncrement,
    FeatureRecord,
    FeatureStore,
    ProfileAndRecord,
    ProfileStore,
    Stores,
)
from tailorbot.store.redis_async import RedisAsyncUserReader
from tailorbot.store.redis_counters import ADD_COUNTERS, STAMPS_KEY, counter_arg
from tailorbot.store.redis_shared import (
    ERASED_AT,
    RedisConcern,
    RedisCounterStore,
    RedisDecisionStore,
    guard,
)
from tailorbot.store.state_blob import (
    DEDUPE_KEY,
    SEPARATOR,
    decode_served,
    decode_state,
    encode_state,
    keeps_apart,
)

PUT_CHUNK = 500  # records per script call: bounds how long one call holds the server
PUT_CHUNK_ARGS = 100_000  # and arguments (a user's ids given whole count two each)

OFFSET_DIGITS = 20  # the fixed-width offset that heads a stored record
# the key kinds of a user's record, dedupe ids and profile (above)
RECORD, DEDUPE, PROFILE = "rec", "dedupe", "profile"

# A record's dedupe ids, from ARGV[a]: mode ('r' replaces the user's ids, 'a' adds), floor
# (drop the ids below it; '' none), n, then n (time, event id) pairs. Returns the next index.
_WRITE_IDS = """
local function write_ids(key, a, ttl)
  local n = tonumber(ARGV[a + 2])
  if ARGV[a] == 'r' then redis.call('DEL', key) end
  local last = a + 2 + 2 * n
  for j = a + 3, last, 1000 do
    redis.call('ZADD', key, unpack(ARGV, j, math.min(j + 999, last)))
  end
  if ARGV[a + 1] ~= '' then redis.call('ZREMRANGEBYSCORE', key, '-inf', '(' .. ARGV[a + 1]) end
  if ttl > 0 then redis.call('PEXPIRE', key, ttl) else redis.call('PERSIST', key) end
  return last + 1
end
"""

# KEYS: erased hash, then per item its record and dedupe ids keys. ARGV: ttl ms (0: none),
# then per item: erasure digest, offset, stored value, its ids (_WRITE_IDS). Returns the
# (0-based) indexes of the items written.
_PUT = (
    _WRITE_IDS
    + """
local ttl = tonumber(ARGV[1])
local written = {}
local a = 2
for i = 2, #KEYS, 2 do
  local offset = tonumber(ARGV[a + 1])
  local stored = redis.call('GETRANGE', KEYS[i], 0, 19)
  local erased = redis.call('HGET', KEYS[1], ARGV[a])
  if (stored == '' or offset > tonumber(stored)) and (not erased or offset >= tonumber(erased)) then
    if ttl > 0 then
      redis.call('SET', KEYS[i], ARGV[a + 2], 'PX', ttl)
    else
      redis.call('SET', KEYS[i], ARGV[a + 2])
    end
    a = write_ids(KEYS[i + 1], a + 3, ttl)
    written[#written + 1] = (i - 2) / 2
  else
    a = a + 6 + 2 * tonumber(ARGV[a + 5])
  end
end
return written
"""
)

# One user's record and the counters of its events, in one step. KEYS: erased hash, record,
# dedupe ids, then one counters hash per (event, namespace), then the stamps hash. ARGV:
# ttl, digest, offset, record, its ids (_WRITE_IDS), then per counters hash: the event's
# offset and its counters (redis_shared.counter_arg). Only the events after the stored
# offset add: another worker's write already counted the rest. The counters are summed per
# hash and checked before anything is written (redis_counters.ADD_COUNTERS): a failing call
# writes nothing.
_PUT_COUNTED = (
    _WRITE_IDS
    + ADD_COUNTERS
    + """
local ttl = tonumber(ARGV[1])
local offset = tonumber(ARGV[3])
local stored = redis.call('GETRANGE', KEYS[2], 0, 19)
local erased = redis.call('HGET', KEYS[1], ARGV[2])
if stored ~= '' and offset <= tonumber(stored) then return 0 end
if erased and offset < tonumber(erased) then return 0 end
local seen = -1
if stored ~= '' then seen = tonumber(stored) end
local sums = {}
local i = 8 + 2 * tonumber(ARGV[7])  -- past the record's ids
for k = 4, #KEYS - 1 do
  if tonumber(ARGV[i]) > seen then
    if sums[KEYS[k]] == nil then sums[KEYS[k]] = {} end
    add_deltas(sums[KEYS[k]], ARGV[i + 1])
  end
  i = i + 2
end
local writes, err = counter_writes(sums)
if not writes then return redis.error_reply(err) end
if ttl > 0 then
  redis.call('SET', KEYS[2], ARGV[4], 'PX', ttl)
else
  redis.call('SET', KEYS[2], ARGV[4])
end
write_ids(KEYS[3], 5, ttl)
write_counters(writes)
return 1
"""
)

# The worker's read of records, each with its dedupe ids when they are apart (the record
# ends with the NUL byte), in one atomic step: a record and its ids agree. KEYS: per user,
# its record and dedupe ids. Returns per user the record (nil: none), then its ids and their
# times, alternating, as plain strings that the client parses in C (redis-py's reply to
# ZRANGE WITHSCORES made the scores floats one by one, ten times as slow).
_GET_WITH_IDS = """
local out = {}
for i = 1, #KEYS, 2 do
  local record = redis.call('GET', KEYS[i])
  out[#out + 1] = record
  if record and string.byte(record, -1) == 0 then
    out[#out + 1] = redis.call('ZRANGE', KEYS[i + 1], 0, -1, 'WITHSCORES')
  else
    out[#out + 1] = {}
  end
end
return out
"""

# KEYS: record, erased hash, erasure times hash, dedupe ids. ARGV: digest, watermark, time.
# Both grow only.
_ERASE_FEATURES = """
redis.call('DEL', KEYS[1], KEYS[4])
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
    address, typed = parse_address(url, known, options)
    client = address.client()
    prefix = typed.get("prefix", "tailorbot")
    try:
        user_reader = RedisUserReader(client, prefix)
        return Stores(
            features=RedisFeatureStore(client, prefix, typed.get("record_ttl")),
            profiles=RedisProfileStore(client, prefix),
            decisions=RedisDecisionStore(client, prefix, typed.get("decision_ttl")),
            counters=RedisCounterStore(client, prefix),
            closer=client.close,
            user_reader=user_reader,
            async_user_reader=RedisAsyncUserReader(address, user_reader),
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
        self._get_with_ids = client.register_script(_GET_WITH_IDS)

    def get(self, user_id: str) -> FeatureRecord | None:
        return self.get_many([user_id]).get(user_id)

    @guard
    def get_many(self, user_ids: Iterable[str]) -> dict[str, FeatureRecord]:
        users = list(dict.fromkeys(user_ids))
        if not users:
            return {}
        pipe = self.client.pipeline(transaction=False)
        for start in range(0, len(users), PUT_CHUNK):
            chunk = users[start : start + PUT_CHUNK]
            keys = [self.key(kind, user_id) for user_id in chunk for kind in (RECORD, DEDUPE)]
            self._get_with_ids(keys=keys, client=pipe)
        replies = [reply for chunk in pipe.execute() for reply in chunk]
        records: dict[str, FeatureRecord] = {}
        for user_id, blob, flat in zip(users, replies[0::2], replies[1::2], strict=True):
            if blob is None:
                continue
            record = records[user_id] = _decode_record(user_id, blob)
            if record.dedupe is not None:
                ids = zip(map(bytes.decode, flat[0::2]), map(float, flat[1::2]), strict=True)
                record.state[DEDUPE_KEY] = dict(ids)
        return records

    @guard
    def put_many(
        self,
        records: Sequence[FeatureRecord],
        increments: Mapping[str, Sequence[EventIncrement]] | None = None,
    ) -> set[str]:
        increments = increments or {}
        ttl_ms = int(self.record_ttl * 1000) if self.record_ttl else 0
        pipe = self.client.pipeline(transaction=False)
        calls: list[list[FeatureRecord]] = []  # the records of each script call, in order
        chunk: list[FeatureRecord] = []
        keys: list[str] = []
        args: list[Any] = []
        for r in records:
            counted = bool(increments.get(r.user_id))
            if chunk and (counted or len(chunk) >= PUT_CHUNK or len(args) > PUT_CHUNK_ARGS):
                self._put(keys=keys, args=args, client=pipe)  # in order: a user may come twice
                calls.append(chunk)
                chunk = []
            if counted:
                counted_keys, counted_args = self._counted_call(r, increments[r.user_id], ttl_ms)
                self._put_counted(keys=counted_keys, args=counted_args, client=pipe)
                calls.append([r])
                continue
            if not chunk:
                keys, args = [self.key("erased")], [ttl_ms]
            chunk.append(r)
            keys += [self.key(RECORD, r.user_id), self.key(DEDUPE, r.user_id)]
            args += [user_digest(r.user_id), int(r.offset)]
            args += _encode_record(r)
        if chunk:
            self._put(keys=keys, args=args, client=pipe)
            calls.append(chunk)
        if not records:
            return set()
        written: set[str] = set()
        for call, done in zip(calls, pipe.execute(), strict=True):
            indexes = done if isinstance(done, list) else [0] if done else []
            written.update(call[i].user_id for i in indexes)
        return written

    def _counted_call(
        self, record: FeatureRecord, events: Sequence[EventIncrement], ttl_ms: int
    ) -> tuple[list[str], list[Any]]:
        keys = [self.key("erased"), self.key(RECORD, record.user_id)]
        keys.append(self.key(DEDUPE, record.user_id))
        args: list[Any] = [ttl_ms, user_digest(record.user_id), int(record.offset)]
        args += _encode_record(record)
        for offset, by_namespace in events:
            for namespace, deltas in by_namespace.items():
                keys.append(self.key("counters", namespace))
                args += [int(offset), counter_arg(deltas)]
        keys.append(self.key(STAMPS_KEY))
        return keys, args

    @guard
    def erase(
        self, user_id: str, partition: int, watermark: int, erased_at: float | None = None
    ) -> None:
        keys = [self.key(RECORD, user_id), self.key("erased"), self.key(ERASED_AT)]
        keys.append(self.key(DEDUPE, user_id))
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
    (two round trips otherwise; see :meth:`Stores.profile_and_record`). The asyncio read
    (:class:`~tailorbot.store.redis_async.RedisAsyncUserReader`) reads the same keys."""

    def __init__(self, client: redis.Redis, prefix: str = "tailorbot") -> None:
        self.client = client
        self.prefix = plain_prefix(prefix)

    @guard
    def __call__(self, user_id: str) -> ProfileAndRecord:
        return self.decoded(user_id, self.client.mget(self.keys(user_id)))

    def keys(self, user_id: str) -> list[str]:
        return [self.key(PROFILE, user_id), self.key(RECORD, user_id)]

    @staticmethod
    def decoded(user_id: str, blobs: Sequence[Any]) -> ProfileAndRecord:
        """The ``MGET`` of :meth:`keys`, read."""
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


def _encode_record(record: FeatureRecord) -> list[Any]:
    """The script's arguments for ``record`` after its digest and offset: the stored value,
    then its dedupe ids (see ``_WRITE_IDS``)."""
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
    blob, ids = encode_state(record.state, keeps_apart(record.state, record.dedupe))
    delta = record.dedupe
    pairs: ItemsView[str, float]
    if delta is None or ids is None:  # the state's ids kept apart (or none), in place of all
        pairs = (ids or {}).items()
        mode, floor = "r", ""
    else:
        pairs = delta.added.items()
        mode, floor = "a", "" if delta.floor is None else repr(float(delta.floor))
    args: list[Any] = [head + SEPARATOR + blob, mode, floor, len(pairs)]
    for event_id, ts in pairs:
        args += (repr(float(ts)), event_id)
    return args


def _decode_record(user_id: str, blob: bytes, *, served: bool = False) -> FeatureRecord:
    """The record in ``blob``; ``served``: its state without the dedupe ids (a decision's
    read, see :mod:`tailorbot.store.state_blob`). Otherwise, when the ids are kept apart, the
    record's ``dedupe`` is :data:`UNCHANGED` and its state has none yet: the caller adds them."""
    end = blob.find(SEPARATOR, OFFSET_DIGITS)
    if end < 0:  # written before the state was stored apart: one document, state inside
        fields = orjson.loads(memoryview(blob)[OFFSET_DIGITS:])
        return FeatureRecord(user_id=user_id, **fields)
    fields = orjson.loads(memoryview(blob)[OFFSET_DIGITS:end])
    if served:
        return FeatureRecord(user_id, decode_served(blob, end + 1), **fields)
    state, apart = decode_state(blob, end + 1)
    return FeatureRecord(user_id, state, **fields, dedupe=UNCHANGED if apart else None)
