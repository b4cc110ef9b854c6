"""The Lua that adds to counters on Redis, and the arguments its scripts take.

Counters: one hash per namespace, each field a double as text (``ADD_COUNTERS``).
Vector counters: one hash per namespace, each field a vector as little-endian doubles
(the bytes :func:`tailorbot.store.base.packed_vectors` makes), added element by element
(``ADD_VECTORS``). Redis's Lua numbers are doubles, so every sum is the one Python makes;
the ``struct`` library reads and writes the vectors without a decimal round trip.

A script that refuses a write (a delta whose length differs from its stored vector's, a
sum that is not finite) answers an error starting with :data:`REFUSED`, which
:func:`refusals_as` raises as the error the store's contract names for it.

>>> counter_arg({"arm-a/n": 1, "arm-a/b/0": 0.1})
b'{"arm-a/n":"1.0","arm-a/b/0":"0.1"}'
>>> counter_arg({"arm-a/n": float("nan")})
Traceback (most recent call last):
ValueError: counter deltas must be finite numbers; not so for ['arm-a/n']
>>> vector_args({"arm/a": b"12345678"})
[1, 'arm/a', b'12345678']
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import Any

import orjson
import redis

from tailorbot.store.base import check_finite

REFUSED = "TAILORBOT-REFUSED"
VECTOR_CALL_FIELDS = 100  # vectors one HMGET or HSET of the vector scripts names
_DOUBLES_PER_CALL = 64  # doubles one struct.pack or unpack call takes (Lua's stack is small)

HASH_CALL_FIELDS = 1000  # counters one HMGET or HSET of the counter scripts names
STAMPS_KEY = "stamps"  # the stamps hash, under the store's prefix: a hash key -> its stamp

# What the counter and vector scripts share (ADD_COUNTERS starts with it): a walk of the
# hashes a script adds to, which reads and checks everything before the script's first
# write (Redis keeps what a failing script wrote). hash_writes(sums, fields, what, total):
# for sums (hash key -> name -> what to add), the HSET arguments of each hash (name, value,
# ...), each value total(key, name, added, stored) (stored: the field's value, or false),
# ``fields`` names to a HMGET; or nil and an error when a key holds another type or a
# total is nil (its error). write_hashes(writes, fields): the HSETs, each hash written to
# raising its stamp (CounterStore.stamps) in the stamps hash, the script's last key
# (STAMPS_KEY): every script that adds to counters or vectors names it last.
HASH_WRITES = """
local function one_hash_writes(key, sum, fields, what, total)
  local names, writes = {}, {}
  for name in pairs(sum) do names[#names + 1] = name end
  if #names == 0 then return writes end  -- nothing to add: the key is not read
  local kind = redis.call('TYPE', key).ok
  if kind ~= 'hash' and kind ~= 'none' then
    return nil, 'WRONGTYPE ' .. what .. ' key ' .. key .. ' holds a ' .. kind
  end
  for first = 1, #names, fields do
    local last = math.min(first + fields - 1, #names)
    local stored = {}
    if kind == 'hash' then stored = redis.call('HMGET', key, unpack(names, first, last)) end
    for j = first, last do
      local name = names[j]
      local value, err = total(key, name, sum[name], stored[j - first + 1])
      if value == nil then return nil, err end
      writes[#writes + 1] = name
      writes[#writes + 1] = value
    end
  end
  return writes
end
local function hash_writes(sums, fields, what, total)
  local writes = {}
  for key, sum in pairs(sums) do
    local found, err = one_hash_writes(key, sum, fields, what, total)
    if not found then return nil, err end
    writes[key] = found
  end
  return writes
end
local function write_hashes(writes, fields)
  for key, found in pairs(writes) do
    for first = 1, #found, 2 * fields do
      local last = math.min(first + 2 * fields - 1, #found)
      redis.call('HSET', key, unpack(found, first, last))
    end
    if #found > 0 then redis.call('HINCRBY', KEYS[#KEYS], key, 1) end
  end
end
"""

# The Lua functions of every script that adds to counters hashes (prepended to each).
# Counters are added as doubles, as the SQLite store adds them: each stored value and delta
# is text that reads back as exactly its double, and so is each sum written back (17
# significant digits). Not HINCRBYFLOAT: its long-double sum is stored to 17 decimal
# places, so a counter of 1e-20 read back 0. And two calls a hash (HMGET, HSET), not one a
# counter, with everything checked before the first write.
# add_deltas(sum, arg): adds one counter_arg to sum (name -> number; a name only this arg
# gives keeps its text). counter_writes(sums): for sums (hash key -> sum), the HSET
# arguments of each hash, or nil and an error when a key holds another type, a stored
# value is not a number or a sum is not finite. write_counters(writes): the HSETs.
ADD_COUNTERS = (
    HASH_WRITES
    + f"""
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
local function counter_total(key, name, total, before)
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
  return total
end
local function counter_writes(sums)
  return hash_writes(sums, {HASH_CALL_FIELDS}, 'counters', counter_total)
end
local function write_counters(writes) write_hashes(writes, {HASH_CALL_FIELDS}) end
"""
)

# The Lua functions of every script that adds to vector hashes (prepended to each, after
# ADD_COUNTERS or HASH_WRITES).
# add_vector(sum, name, packed): adds one packed delta to sum[name] (a table of numbers);
# an error text when it differs in length from a delta added before. vector_writes(sums):
# for sums (hash key -> name -> numbers), the HSET arguments of each hash, or nil and an
# error when a key holds another type, a stored vector is not whole doubles or differs in
# length, or a sum is not finite. write_vectors(writes): the HSETs.
ADD_VECTORS = f"""
local function unpack_doubles(packed)
  local values, pos, n, k = {{}}, 1, #packed / 8, 0
  while k < n do
    local m = math.min({_DOUBLES_PER_CALL}, n - k)
    local chunk = {{struct.unpack('<' .. string.rep('d', m), packed, pos)}}
    pos = chunk[m + 1]
    for j = 1, m do values[k + j] = chunk[j] end
    k = k + m
  end
  return values
end
local function pack_doubles(values)
  local parts = {{}}
  for first = 1, #values, {_DOUBLES_PER_CALL} do
    local last = math.min(first + {_DOUBLES_PER_CALL - 1}, #values)
    parts[#parts + 1] = struct.pack('<' .. string.rep('d', last - first + 1),
                                    unpack(values, first, last))
  end
  return table.concat(parts)
end
local function add_vector(sum, name, packed)
  local delta = unpack_doubles(packed)
  local before = sum[name]
  if before == nil then
    sum[name] = delta
    return nil
  end
  if #before ~= #delta then
    return "{REFUSED} vector counter '" .. name .. "' gets deltas of " .. #before ..
      ' and ' .. #delta .. ' values'
  end
  for k = 1, #delta do before[k] = before[k] + delta[k] end
  return nil
end
local function vector_total(key, name, total, before)
  if before then
    if #before % 8 ~= 0 then
      return nil, 'vector counter ' .. name .. ' of ' .. key .. ' holds no doubles'
    end
    local values = unpack_doubles(before)
    if #values ~= #total then
      return nil, "{REFUSED} vector counter '" .. name .. "' of " .. key .. ' holds ' ..
        #values .. ' values; a delta of ' .. #total .. ' cannot be added to it'
    end
    for k = 1, #total do total[k] = values[k] + total[k] end
  end
  for k = 1, #total do
    local value = total[k]
    if not (value > -math.huge and value < math.huge) then
      return nil, "{REFUSED} the sum of vector counter '" .. name .. "' is not finite"
    end
  end
  return pack_doubles(total)
end
local function vector_writes(sums)
  return hash_writes(sums, {VECTOR_CALL_FIELDS}, 'vector counters', vector_total)
end
local function write_vectors(writes) write_hashes(writes, {VECTOR_CALL_FIELDS}) end
"""

# KEYS: the vector hash, the stamps hash. ARGV: its deltas (vector_args). Nothing written
# on an error.
ADD_VECTORS_SCRIPT = (
    HASH_WRITES
    + ADD_VECTORS
    + """
local sum = {}
for i = 2, 2 * tonumber(ARGV[1]), 2 do
  local err = add_vector(sum, ARGV[i], ARGV[i + 1])
  if err then return redis.error_reply(err) end
end
local writes, err = vector_writes({[KEYS[1]] = sum})
if not writes then return redis.error_reply(err) end
write_vectors(writes)
return 1
"""
)


def vector_args(packed: Mapping[str, bytes]) -> list[Any]:
    """One namespace's packed vector deltas as script arguments: their number, then each
    name and its bytes (arguments are binary-safe: no text encoding of the doubles)."""
    args: list[Any] = [len(packed)]
    for name, delta in packed.items():
        args += [name, delta]
    return args


@contextlib.contextmanager
def refusals_as(error: type[Exception]) -> Iterator[None]:
    """A vector script's refusal (:data:`REFUSED`) as ``error``; other errors pass (the
    store's guard makes them :class:`~tailorbot.store.base.StoreError`)."""
    try:
        yield
    except redis.ResponseError as exc:
        # a pipeline's error names its command (and some of its arguments) first
        text = str(exc)
        _, caused, reason = text.partition(f"caused error: {REFUSED}")
        if caused or text.startswith(REFUSED):
            raise error((reason if caused else text.removeprefix(REFUSED)).strip()) from None
        raise


def counter_arg(deltas: Mapping[str, float]) -> bytes:
    """One counters hash's deltas as one argument of a script (``ADD_COUNTERS``): a JSON
    object of name to delta, each delta as text that reads back as exactly its double
    (``repr``; a JSON number would reach the script through Lua's conversion). One argument,
    not two per counter: redis-py encodes each argument in Python, and a feedback adds some
    85."""
    check_finite(deltas)
    return orjson.dumps({name: repr(float(delta)) for name, delta in deltas.items()})
