"""The online store on Redis: one hash per user record, fenced writes in Lua, pipelined reads.

Keys (``{prefix}`` from the URL, default ``tailorbot``):

* ``{prefix}:rec:{user_id}`` — the record: its log offset as 20 decimal digits, then the
  record as JSON (one value, so a batch of users is one ``MGET``). A Lua script writes a batch,
  each record only when its offset is newer than the stored one (read with ``GETRANGE``) and
  not below the user's erasure watermark, so neither a stale worker nor an event of an erased
  user still in flight can bring old state back.
* ``{prefix}:profile:{user_id}`` — the profile (JSON).
* ``{prefix}:decision:{decision_id}`` — hash: ``u`` user, ``r`` record, ``f`` feedback (JSON);
  ``{prefix}:user:{user_id}:decisions`` — the user's decision ids, for erasure.
* ``{prefix}:counters:{namespace}`` — hash of floats, added to with ``HINCRBYFLOAT`` (additions
  commute: concurrent workers lose nothing).
* ``{prefix}:erased`` — hash: erasure digest of a user id -> log watermark. Nothing else about
  an erased user is kept.

URL options: ``record_ttl`` (seconds; a record not rewritten for that long expires, i.e. users
idle that long lose their features) and ``decision_ttl`` (seconds; feedback can arrive until
then). Both default to never. Single primary only (no Cluster: scripts span users' keys).

>>> store = RedisOnlineStore.from_url("redis://127.0.0.1:6379/0?prefix=doc&decision_ttl=86400")
>>> store.decision_ttl
86400.0
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import orjson
import redis

from tailorbot._redis import (
    key_text,
    optional_seconds,
    parse_url,
    plain_prefix,
    translate_errors,
)
from tailorbot.store.base import FeatureRecord, OnlineStore, StoreError, user_digest

_guard = translate_errors(StoreError)

PUT_CHUNK = 500  # records per script call: bounds how long one call holds the server

OFFSET_DIGITS = 20  # the fixed-width offset that heads a stored record

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

# KEYS: decision. ARGV: feedback. 1 when attached now, 0 when given before or no decision.
_FEEDBACK = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
return redis.call('HSETNX', KEYS[1], 'f', ARGV[1])
"""

# KEYS: record, profile, decision index, erased hash. ARGV: digest, watermark, decision key
# prefix. The watermark only grows.
_ERASE = """
for _, id in ipairs(redis.call('SMEMBERS', KEYS[3])) do
  redis.call('DEL', ARGV[3] .. id)
end
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])
local old = redis.call('HGET', KEYS[4], ARGV[1])
if not old or tonumber(ARGV[2]) > tonumber(old) then
  redis.call('HSET', KEYS[4], ARGV[1], ARGV[2])
end
return 1
"""


class RedisOnlineStore(OnlineStore):
    """An :class:`OnlineStore` on Redis (see the module docstring for the layout)."""

    def __init__(
        self,
        client: redis.Redis,
        prefix: str = "tailorbot",
        record_ttl: float | None = None,
        decision_ttl: float | None = None,
    ) -> None:
        self.client = client
        self.prefix = plain_prefix(prefix)
        self.record_ttl = optional_seconds(record_ttl)
        self.decision_ttl = optional_seconds(decision_ttl)
        self._put = client.register_script(_PUT)
        self._feedback = client.register_script(_FEEDBACK)
        self._erase = client.register_script(_ERASE)

    @classmethod
    def from_url(cls, url: str, **options: Any) -> RedisOnlineStore:
        """Open ``redis://host:port/db?prefix=tailorbot&record_ttl=...&decision_ttl=...``;
        keyword ``options`` override the URL's."""
        known = {"record_ttl": optional_seconds, "decision_ttl": optional_seconds}
        client, typed = parse_url(url, known, options)
        return cls(client, **typed)

    # --- key names ------------------------------------------------------------------
    def record_key(self, user_id: str) -> str:
        return f"{self.prefix}:rec:{user_id}"

    def profile_key(self, user_id: str) -> str:
        return f"{self.prefix}:profile:{user_id}"

    def decision_key(self, decision_id: str) -> str:
        return f"{self.prefix}:decision:{decision_id}"

    def decisions_of_key(self, user_id: str) -> str:
        return f"{self.prefix}:user:{user_id}:decisions"

    def counters_key(self, namespace: str) -> str:
        return f"{self.prefix}:counters:{namespace}"

    @property
    def erased_key(self) -> str:
        return f"{self.prefix}:erased"

    # --- feature records -------------------------------------------------------------
    def get(self, user_id: str) -> FeatureRecord | None:
        return self.get_many([user_id]).get(user_id)

    @_guard
    def get_many(self, user_ids: Iterable[str]) -> dict[str, FeatureRecord]:
        ids = list(dict.fromkeys(user_ids))
        if not ids:
            return {}
        blobs: list[Any] = self.client.mget([self.record_key(user_id) for user_id in ids])
        return {
            user_id: _decode_record(user_id, blob)
            for user_id, blob in zip(ids, blobs, strict=True)
            if blob is not None
        }

    @_guard
    def put_many(self, records: Sequence[FeatureRecord]) -> None:
        ttl_ms = int(self.record_ttl * 1000) if self.record_ttl else 0
        pipe = self.client.pipeline(transaction=False)
        for start in range(0, len(records), PUT_CHUNK):
            chunk = records[start : start + PUT_CHUNK]
            keys = [self.erased_key] + [self.record_key(r.user_id) for r in chunk]
            args: list[str | int | bytes] = [ttl_ms]
            for r in chunk:
                args += [user_digest(r.user_id), int(r.offset), _encode_record(r)]
            self._put(keys=keys, args=args, client=pipe)
        if records:
            pipe.execute()

    # --- profiles --------------------------------------------------------------------
    def get_profile(self, user_id: str) -> dict[str, Any] | None:
        return self.get_profiles([user_id]).get(user_id)

    @_guard
    def get_profiles(self, user_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        ids = list(dict.fromkeys(user_ids))
        if not ids:
            return {}
        blobs = self.client.mget([self.profile_key(u) for u in ids])
        return {u: orjson.loads(b) for u, b in zip(ids, blobs, strict=True) if b is not None}

    @_guard
    def put_profile(self, user_id: str, profile: Mapping[str, Any]) -> None:
        self.client.set(self.profile_key(user_id), orjson.dumps(dict(profile)))

    # --- decisions -------------------------------------------------------------------
    @_guard
    def put_decision(self, decision_id: str, user_id: str, record: Mapping[str, Any]) -> None:
        key, index = self.decision_key(decision_id), self.decisions_of_key(user_id)
        pipe = self.client.pipeline(transaction=True)
        pipe.hset(key, mapping={"u": user_id, "r": orjson.dumps(dict(record))})
        pipe.sadd(index, decision_id)
        if self.decision_ttl:
            ttl_ms = int(self.decision_ttl * 1000)
            pipe.pexpire(key, ttl_ms)
            pipe.pexpire(index, ttl_ms)  # the newest decision keeps the index alive
        pipe.execute()

    @_guard
    def get_decision(self, decision_id: str) -> dict[str, Any] | None:
        blob, feedback = self.client.hmget(self.decision_key(decision_id), ["r", "f"])
        if blob is None:
            return None
        decision: dict[str, Any] = orjson.loads(blob)
        if feedback is not None:
            decision["feedback"] = orjson.loads(feedback)
        return decision

    @_guard
    def record_feedback(self, decision_id: str, feedback: Mapping[str, Any]) -> bool:
        keys = [self.decision_key(decision_id)]
        return bool(self._feedback(keys=keys, args=[orjson.dumps(dict(feedback))]))

    # --- shared counters -------------------------------------------------------------
    @_guard
    def increment(self, namespace: str, deltas: Mapping[str, float]) -> None:
        bad = sorted(name for name, d in deltas.items() if not math.isfinite(d))
        if bad:
            raise ValueError(f"counter deltas must be finite numbers; not so for {bad}")
        if not deltas:
            return
        key = self.counters_key(namespace)
        pipe = self.client.pipeline(transaction=True)
        for name, delta in deltas.items():
            pipe.hincrbyfloat(key, name, float(delta))
        pipe.execute()

    @_guard
    def counters(self, namespace: str) -> dict[str, float]:
        stored = self.client.hgetall(self.counters_key(namespace))
        return {key_text(name): float(value) for name, value in stored.items()}

    # --- privacy ---------------------------------------------------------------------
    @_guard
    def erase_user(self, user_id: str, partition: int, watermark: int) -> None:
        keys = [
            self.record_key(user_id),
            self.profile_key(user_id),
            self.decisions_of_key(user_id),
            self.erased_key,
        ]
        self._erase(keys=keys, args=[user_digest(user_id), int(watermark), self.decision_key("")])

    @_guard
    def erasure_watermarks(self, user_ids: Iterable[str]) -> dict[str, int]:
        ids = list(dict.fromkeys(user_ids))
        if not ids:
            return {}
        marks = self.client.hmget(self.erased_key, [user_digest(u) for u in ids])
        return {u: int(m) for u, m in zip(ids, marks, strict=True) if m is not None}

    # --- lifecycle -------------------------------------------------------------------
    @_guard
    def ping(self) -> None:
        self.client.ping()

    def close(self) -> None:
        self.client.close()

    def __repr__(self) -> str:
        return f"RedisOnlineStore(prefix={self.prefix!r})"


def _encode_record(record: FeatureRecord) -> bytes:
    if not 0 <= record.offset < 10**OFFSET_DIGITS:
        raise ValueError(f"a record's offset must be >= 0, got {record.offset}")
    return b"%020d" % record.offset + orjson.dumps(
        {
            "state": record.state,
            "partition": record.partition,
            "offset": record.offset,
            "event_time": record.event_time,
            "updated_at": record.updated_at,
            "version": record.version,
        }
    )


def _decode_record(user_id: str, blob: bytes) -> FeatureRecord:
    fields = orjson.loads(memoryview(blob)[OFFSET_DIGITS:])
    return FeatureRecord(user_id=user_id, **fields)
