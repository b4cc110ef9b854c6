"""The Redis concerns the decision plane writes: decisions awaiting feedback and the shared
additive counters (a batch's feedback marks and what they taught go in one script call), and what
every concern over the shared client has in common (keys under the prefix, ping, errors as
:class:`StoreError`, counter arguments). The key layout is in :mod:`tailorbot.store.redis`,
whose :func:`~tailorbot.store.redis.open_stores` opens these with the others over one client.

>>> counter_arg({"arm-a/n": 1, "arm-a/b/0": 0.1})
b'{"arm-a/n":"1.0","arm-a/b/0":"0.1"}'
>>> counter_arg({"arm-a/n": float("nan")})
Traceback (most recent call last):
ValueError: counter deltas must be finite numbers; not so for ['arm-a/n']
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

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
    check_finite,
    decision_made_at,
    decoded_decision,
)

guard = translate_errors(StoreError)
FEEDBACK_SCRIPT_MARKS = 16  # feedback marks one script takes (record_feedbacks)
HASH_CALL_FIELDS = 1000  # counters one HMGET or HSET of the counter scripts names

# The Lua functions of every script that adds to counters hashes (prepended to each).
# Counters are added as doubles, as the SQLite store adds them: each stored value and delta
# is text that reads back as exactly its double, and so is each sum written back (17
# significant digits). Not HINCRBYFLOAT: its long-double sum is stored to 17 decimal
# places, so a counter of 1e-20 read back 0. And two calls a hash (HMGET, HSET), not one a
# counter, with everything checked before the first write.
# add_deltas(sum, arg): adds one counter_arg to sum (name -> number; a name only this arg
# gives keeps its text). counter_writes(sums): for sums (hash key -> sum), the HSET
# arguments of each hash, or nil and an error when a key holds another type, a stored
# value is not a number or a sum is not finite: call it before the script's first write
# (Redis keeps what a failing script wrote). write_counters(writes): the HSETs.
ADD_COUNTERS = f"""
local function add_deltas(sum, arg)
  for name, delta in pairs(cjson.decode(arg)) do
    local before = sum[name]
    if before == nil then
      sum[name] = delta
    else
      sum[name] = tonumber(before) + tonumber(delta)
    end
  end
end
local function hash_writes(key, sum)
  local names, writes = {{}}, {{}}
  for name in pairs(sum) do names[#names + 1] = name end
  if #names == 0 then return writes end  -- nothing to add: the key is not read
  local kind = redis.call('TYPE', key).ok
  if kind ~= 'hash' and kind ~= 'none' then
    return nil, 'WRONGTYPE counters key ' .. key .. ' holds a ' .. kind
  end
  for first = 1, #names, {HASH_CALL_FIELDS} do
    local last = math.min(first + {HASH_CALL_FIELDS - 1}, #names)
    local stored = {{}}
    if kind == 'hash' then stored = redis.call('HMGET', key, unpack(names, first, last)) end
    for j = first, last do
      local name = names[j]
      local total = sum[name]
      local before = stored[j - first + 1]
      if before then
        local value = tonumber(before)
        if value == nil then
          return nil, 'counter ' .. name .. ' of ' .. key .. ' holds no number'
        end
        total = value + tonumber(total)
      end
      if type(total) == 'number' then
        if not (total > -math.huge and total < math.huge) then
          return nil, 'the sum of counter ' .. name .. ' is not finite'
        end
        total = string.format('%.17g', total)
      end
      writes[#writes + 1] = name
      writes[#writes + 1] = total
    end
  end
  return writes
end
local function counter_writes(sums)
  local writes = {{}}
  for key, sum in pairs(sums) do
    local found, err = hash_writes(key, sum)
    if not found then return nil, err end
    writes[key] = found
  end
  return writes
end
local function write_counters(writes)
  for key, found in pairs(writes) do
    for first = 1, #found, {2 * HASH_CALL_FIELDS} do
      local last = math.min(first + {2 * HASH_CALL_FIELDS - 1}, #found)
      redis.call('HSET', key, unpack(found, first, last))
    end
  end
end
"""

# Many decisions' feedback marks and what they taught, in one step. KEYS: each mark's
# decision (in order; one may come twice), then the counters hashes. ARGV: the number of
# marks, then per mark: its feedback, the mark it replaces ('' for none yet), its number of
# namespaces and, per namespace, the index of its hash among the counters hashes and its
# counters (counter_arg). Each mark is taken as record_feedback would take it, in order;
# the counters of those taken are summed per name (the marks of a batch add to many of the
# same ones) and each added once. Everything is read and checked before the first write: a
# failing call writes nothing. Returns 1 per mark written now, 0 per mark that is not the
# expected one (given before, or extended since) or whose decision is gone.
_FEEDBACKS = (
    ADD_COUNTERS
    + """
local n = tonumber(ARGV[1])
local decisions, taken, sums = {}, {}, {}
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
end
local writes, err = counter_writes(sums)
if not writes then return redis.error_reply(err) end
for key, decision in pairs(decisions) do
  if decision.written then redis.call('HSET', key, 'f', decision.mark) end
end
write_counters(writes)
return taken
"""
)

# KEYS: the counters hash. ARGV: its deltas (counter_arg). Nothing written on an error.
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
    ) -> bool:
        return self.record_feedbacks([FeedbackMark(decision_id, feedback, increments, previous)])[0]

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
        return [bool(done) for taken in pipe.execute() for done in taken]

    def _feedbacks_call(self, marks: Sequence[FeedbackMark]) -> tuple[list[str], list[Any]]:
        """The keys and arguments of the feedback script for ``marks``."""
        keys = [self.key("decision", mark.decision_id) for mark in marks]
        hashes: dict[str, int] = {}  # namespace -> its hash's index among the counters
        args: list[Any] = [len(marks)]
        for mark in marks:
            expected = orjson.dumps(dict(mark.previous)) if mark.previous is not None else b""
            increments = mark.increments or {}
            args += [orjson.dumps(dict(mark.feedback)), expected, len(increments)]
            for namespace, deltas in increments.items():
                args += [hashes.setdefault(namespace, len(hashes) + 1), counter_arg(deltas)]
        keys += [self.key("counters", namespace) for namespace in hashes]
        return keys, args

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

    @guard
    def increment(self, namespace: str, deltas: Mapping[str, float]) -> None:
        arg = counter_arg(deltas)  # checks them first
        if deltas:
            self._increment(keys=[self.key("counters", namespace)], args=[arg])

    @guard
    def counters(self, namespace: str) -> dict[str, float]:
        stored = self.client.hgetall(self.key("counters", namespace))
        return {key_text(name): float(value) for name, value in stored.items()}


def counter_arg(deltas: Mapping[str, float]) -> bytes:
    """One counters hash's deltas as one argument of a script (``ADD_COUNTERS``): a JSON
    object of name to delta, each delta as text that reads back as exactly its double
    (``repr``; a JSON number would reach the script through Lua's conversion). One argument,
    not two per counter: redis-py encodes each argument in Python, and a feedback adds some
    85."""
    check_finite(deltas)
    return orjson.dumps({name: repr(float(delta)) for name, delta in deltas.items()})
