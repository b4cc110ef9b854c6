"""The Redis concerns the decision plane writes: decisions awaiting feedback and the shared
additive counters (a batch's feedback marks and what they taught go in one script call), and what
every concern over the shared client has in common (keys under the prefix, ping, errors as
:class:`StoreError`; the counters' Lua and arguments are in
:mod:`tailorbot.store.redis_counters`). The key layout is in :mod:`tailorbot.store.redis`,
whose :func:`~tailorbot.store.redis.open_stores` opens these with the others over one client.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, cast

import numpy as np
import orjson
import redis

from tailorbot._redis import (
    READY_PROBE_TTL_MS,
    key_text,
    optional_seconds,
    plain_prefix,
    translate_errors,
)
from tailorbot.events.erasure import user_digest
from tailorbot.store.base import (
    CounterStore,
    DecisionStore,
    FeedbackMark,
    StoreError,
    VectorDelta,
    decision_made_at,
    decoded_decision,
    packed_vectors,
    unpacked_vector,
)
from tailorbot.store.redis_counters import (
    ADD_COUNTERS,
    ADD_VECTORS,
    ADD_VECTORS_SCRIPT,
    STAMPS_KEY,
    counter_arg,
    refusals_as,
    vector_args,
)

guard = translate_errors(StoreError)
FEEDBACK_SCRIPT_MARKS = 16  # feedback marks one script takes (record_feedbacks)
# Many decisions' feedback marks and what they taught, in one step. KEYS: each mark's
# decision (in order; one may come twice), then the counters and vector hashes, then the
# stamps hash. ARGV: the number of marks, then per mark: its feedback, the mark it replaces
# ('' for none yet), its number of counter namespaces and, per namespace, the index of its
# hash among the hashes and its counters (counter_arg); then its number of vector
# namespaces and, per namespace, the index of its hash and its vectors
# (redis_counters.vector_args). Each mark is taken as record_feedback would take it, in
# order; the counters and vectors of those taken are summed per name (the marks of a batch
# add to many of the same ones) and each added once. Everything is read and checked before
# the first write: a failing call writes nothing.
# Returns 1 per mark written now, 0 per mark that is not the expected one (given before,
# or extended since) or whose decision is gone.
_FEEDBACKS = (
    ADD_COUNTERS
    + ADD_VECTORS
    + """
local n = tonumber(ARGV[1])
local decisions, taken, sums, vector_sums = {}, {}, {}, {}
local i = 2
for m = 1, n do
  local decision = decisions[KEYS[m]]
  if decision == nil then
    decision = {exists = redis.call('EXISTS', KEYS[m]) == 1}
    if decision.exists then decision.mark = redis.call('HGET', KEYS[m], 'f') end
    decisions[KEYS[m]] = decision
  end
  local ok = 0
  if decision.exists then
    if ARGV[i + 1] == '' then
      if not decision.mark then ok = 1 end
    elseif decision.mark == ARGV[i + 1] then
      ok = 1
    end
  end
  if ok == 1 then
    decision.mark = ARGV[i]
    decision.written = true
  end
  taken[m] = ok
  local namespaces = tonumber(ARGV[i + 2])
  i = i + 3
  for _ = 1, namespaces do
    if ok == 1 then
      local hash = KEYS[n + tonumber(ARGV[i])]
      if sums[hash] == nil then sums[hash] = {} end
      add_deltas(sums[hash], ARGV[i + 1])
    end
    i = i + 2
  end
  local vector_namespaces = tonumber(ARGV[i])
  i = i + 1
  for _ = 1, vector_namespaces do
    local hash = KEYS[n + tonumber(ARGV[i])]
    local count = tonumber(ARGV[i + 1])
    i = i + 2
    if ok == 1 and vector_sums[hash] == nil then vector_sums[hash] = {} end
    for _ = 1, count do
      if ok == 1 then
        local refused = add_vector(vector_sums[hash], ARGV[i], ARGV[i + 1])
        if refused then return redis.error_reply(refused) end
      end
      i = i + 2
    end
  end
end
local writes, err = counter_writes(sums)
if not writes then return redis.error_reply(err) end
local vector_found, vector_err = vector_writes(vector_sums)
if not vector_found then return redis.error_reply(vector_err) end
for key, decision in pairs(decisions) do
  if decision.written then redis.call('HSET', key, 'f', decision.mark) end
end
write_counters(writes)
write_vectors(vector_found)
return taken
"""
)

# KEYS: the counters hash, the stamps hash. ARGV: its deltas (counter_arg). Nothing written
# on an error.
_INCREMENT = (
    ADD_COUNTERS
    + """
local sum = {}
add_deltas(sum, ARGV[1])
local writes, err = counter_writes({[KEYS[1]] = sum})
if not writes then return redis.error_reply(err) end
write_counters(writes)
return 1
"""
)

# KEYS: the erasure times hash, then per decision its key and its user's index. ARGV: ttl ms
# (0: none), stored at, then per decision: id, user id, record, erasure digest, made at. A
# decision made before its user's erasure is not written. Returns the ids written.
_PUT_DECISIONS = """
local ttl = tonumber(ARGV[1])
local written = {}
local i = 3
for k = 2, #KEYS, 2 do
  local erased = redis.call('HGET', KEYS[1], ARGV[i + 3])
  if not erased or tonumber(erased) <= tonumber(ARGV[i + 4]) then
    written[#written + 1] = ARGV[i]
    redis.call('HSET', KEYS[k], 'u', ARGV[i + 1], 'r', ARGV[i + 2], 't', ARGV[2])
    redis.call('SADD', KEYS[k + 1], ARGV[i])
    if ttl > 0 then
      redis.call('PEXPIRE', KEYS[k], ttl)
      redis.call('PEXPIRE', KEYS[k + 1], ttl)  -- the newest decision keeps the index alive
    end
  end
  i = i + 5
end
return written
"""
ERASED_AT = "erased_at"  # the key (under the prefix) of the hash digest -> erasure time
PUT_DECISIONS_CHUNK = 500  # decisions per script call: bounds how long one holds the server

# KEYS: the user's decision index. ARGV: decision key prefix.
_ERASE_DECISIONS = """
for _, id in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  redis.call('DEL', ARGV[1] .. id)
end
redis.call('DEL', KEYS[1])
return 1
"""


class RedisConcern:
    """What every concern does with the shared client: keys under its prefix, ping."""

    client: redis.Redis
    prefix: str

    def key(self, *parts: str) -> str:
        return ":".join((self.prefix, *parts))

    @guard
    def ping(self) -> None:
        # A write, not PING: a replica left read-only by a failover, or an out-of-memory
        # Redis, answers PING but refuses every write (/readyz must say so).
        self.client.set(self.key("readyz"), b"1", px=READY_PROBE_TTL_MS)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(prefix={self.prefix!r})"


class RedisDecisionStore(RedisConcern, DecisionStore):
    """Decisions (hashes) awaiting feedback, with a per-user index set for erasure."""

    def __init__(
        self, client: redis.Redis, prefix: str = "tailorbot", decision_ttl: float | None = None
    ) -> None:
        self.client = client
        self.prefix = plain_prefix(prefix)
        self.decision_ttl = optional_seconds(decision_ttl)
        self._feedbacks = client.register_script(_FEEDBACKS)
        self._erase = client.register_script(_ERASE_DECISIONS)
        self._put = client.register_script(_PUT_DECISIONS)

    @guard
    def put_many(self, decisions: Sequence[tuple[str, str, Mapping[str, Any]]]) -> set[str]:
        if not decisions:
            return set()
        ttl_ms = int(self.decision_ttl * 1000) if self.decision_ttl else 0
        stored_at = repr(time.time())
        pipe = self.client.pipeline(transaction=False)
        for start in range(0, len(decisions), PUT_DECISIONS_CHUNK):
            keys = [self.key(ERASED_AT)]
            args: list[Any] = [ttl_ms, stored_at]
            for decision_id, user_id, record in decisions[start : start + PUT_DECISIONS_CHUNK]:
                keys += [self.key("decision", decision_id), self.key("user", user_id, "decisions")]
                made_at = min(decision_made_at(record), 1e300)  # Lua's tonumber reads no inf
                args += [decision_id, user_id, orjson.dumps(dict(record))]
                args += [user_digest(user_id), repr(made_at)]
            self._put(keys=keys, args=args, client=pipe)
        return {key_text(i) for written in pipe.execute() for i in written}

    @guard
    def get(self, decision_id: str) -> dict[str, Any] | None:
        blob, feedback = self.client.hmget(self.key("decision", decision_id), ["r", "f"])
        if blob is None:
            return None
        return decoded_decision(blob, feedback)

    @guard
    def get_many(self, decision_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        ids = list(dict.fromkeys(decision_ids))
        pipe = self.client.pipeline(transaction=False)
        for decision_id in ids:
            pipe.hmget(self.key("decision", decision_id), ["r", "f"])
        return {
            decision_id: decoded_decision(blob, feedback)
            for decision_id, (blob, feedback) in zip(
                ids, pipe.execute() if ids else [], strict=True
            )
            if blob is not None
        }

    def record_feedback(
        self,
        decision_id: str,
        feedback: Mapping[str, Any],
        increments: Mapping[str, Mapping[str, float]] | None = None,
        previous: Mapping[str, Any] | None = None,
        vectors: Mapping[str, Mapping[str, VectorDelta]] | None = None,
    ) -> bool:
        mark = FeedbackMark(decision_id, feedback, increments, previous, vectors)
        return self.record_feedbacks([mark])[0]

    @guard
    def record_feedbacks(self, marks: Sequence[FeedbackMark]) -> list[bool]:
        # Every delta checked first; then one script a chunk of marks, in one round trip.
        # A chunk, not the batch: a script holds Redis while it runs (some 2 ms for 16
        # marks), and the chunks' counters are still added once per name each.
        calls = [
            self._feedbacks_call(marks[start : start + FEEDBACK_SCRIPT_MARKS])
            for start in range(0, len(marks), FEEDBACK_SCRIPT_MARKS)
        ]
        pipe = self.client.pipeline(transaction=False)
        for keys, args in calls:
            self._feedbacks(keys=keys, args=args, client=pipe)
        # a refusal of the stored vectors, as SQLite's (this call's other scripts, each its
        # own chunk of marks, may have written theirs: the caller reads back which landed)
        with refusals_as(StoreError):
            return [bool(done) for taken in pipe.execute() for done in taken]

    def _feedbacks_call(self, marks: Sequence[FeedbackMark]) -> tuple[list[str], list[Any]]:
        """The keys and arguments of the feedback script for ``marks``."""
        keys = [self.key("decision", mark.decision_id) for mark in marks]
        hashes: dict[str, int] = {}  # a hash's key -> its index among the hashes
        args: list[Any] = [len(marks)]
        for mark in marks:
            expected = orjson.dumps(dict(mark.previous)) if mark.previous is not None else b""
            increments = mark.increments or {}
            args += [orjson.dumps(dict(mark.feedback)), expected, len(increments)]
            for namespace, deltas in increments.items():
                key = self.key("counters", namespace)
                args += [hashes.setdefault(key, len(hashes) + 1), counter_arg(deltas)]
            vectors = mark.vectors or {}
            args.append(len(vectors))
            for namespace, vector_deltas in vectors.items():
                key = self.key("vectors", namespace)
                packed = packed_vectors(vector_deltas)
                args += [hashes.setdefault(key, len(hashes) + 1), *vector_args(packed)]
        return [*keys, *hashes, self.key(STAMPS_KEY)], args

    @guard
    def erase_user(self, user_id: str) -> None:
        keys = [self.key("user", user_id, "decisions")]
        self._erase(keys=keys, args=[self.key("decision", "")])

    def scan(self, since: float | None = None) -> Iterator[dict[str, Any]]:
        """SCAN over the decision keys (a full pass, for offline evaluation), sorted by time."""
        found = []
        for key in self._scan_keys(self.key("decision", "*")):
            blob, feedback, stored_at = self._hmget(key, ["r", "f", "t"])
            if blob is None:
                continue  # expired or erased since the SCAN saw it
            at = float(stored_at) if stored_at is not None else 0.0
            if since is not None and at < since:
                continue
            found.append((at, decoded_decision(blob, feedback)))
        found.sort(key=lambda pair: pair[0])
        return iter([decision for _, decision in found])

    @guard
    def _scan_keys(self, pattern: str) -> list[Any]:
        return list(self.client.scan_iter(match=pattern, count=1000))

    @guard
    def _hmget(self, key: Any, fields: list[str]) -> list[Any]:
        return list(self.client.hmget(key, fields))


class RedisCounterStore(RedisConcern, CounterStore):
    """Hashes of floats, added to by a script (``ADD_COUNTERS``: as doubles, exactly)."""

    def __init__(self, client: redis.Redis, prefix: str = "tailorbot") -> None:
        self.client = client
        self.prefix = plain_prefix(prefix)
        self._increment = client.register_script(_INCREMENT)
        self._add_vectors = client.register_script(ADD_VECTORS_SCRIPT)

    @guard
    def increment(self, namespace: str, deltas: Mapping[str, float]) -> None:
        arg = counter_arg(deltas)  # checks them first
        if deltas:
            keys = [self.key("counters", namespace), self.key(STAMPS_KEY)]
            self._increment(keys=keys, args=[arg])

    @guard
    def counters(self, namespace: str) -> dict[str, float]:
        stored = self.client.hgetall(self.key("counters", namespace))
        return {key_text(name): float(value) for name, value in stored.items()}

    @guard
    def add_vectors(self, namespace: str, deltas: Mapping[str, VectorDelta]) -> None:
        packed = packed_vectors(deltas)  # checks them first
        if packed:
            with refusals_as(ValueError):
                keys = [self.key("vectors", namespace), self.key(STAMPS_KEY)]
                self._add_vectors(keys=keys, args=vector_args(packed))

    @guard
    def vectors(self, namespace: str) -> dict[str, np.ndarray]:
        stored = self.client.hgetall(self.key("vectors", namespace))
        # bytes: the stores' clients never decode answers (a vector is binary)
        return {key_text(k): unpacked_vector(cast(bytes, v)) for k, v in stored.items()}

    @guard
    def stamps(self, namespaces: Sequence[str]) -> tuple[int, ...]:
        # a counters hash and a vectors hash a namespace, each with its stamp
        keys = [self.key(kind, ns) for ns in namespaces for kind in ("counters", "vectors")]
        if not keys:
            return ()
        return tuple(int(found or 0) for found in self.client.hmget(self.key(STAMPS_KEY), keys))
