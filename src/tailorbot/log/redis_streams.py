"""The event log on Redis Streams: one stream per partition, Kafka-style integer offsets.

Keys (``{prefix}`` from the URL, default ``tailorbot``):

* ``{prefix}:log:{p}`` — the stream of partition ``p``. The record at offset ``o`` has the
  entry id ``{o+1}-0``, fields ``k`` (user id) and ``v`` (value).
* ``{prefix}:log:{p}:end`` — the partition's end offset. One Lua script adds to it and appends
  the entries of a whole batch, so offsets are dense, never reused, and a batch is atomic.
* ``{prefix}:log:user:{user_id}`` — the offsets of the user's records (erasure deletes them
  with ``XDEL`` without scanning the stream, then this set).
* ``{prefix}:log:partitions`` — the partition count, fixed at the first open: a log opened
  with another count raises instead of sending users to the wrong partition.
* ``{prefix}:group:{g}:members`` — live members of group ``g``, scored by their session
  deadline (server time); ``{prefix}:group:{g}:offsets`` — committed offsets per partition;
  ``{prefix}:group:{g}:generation`` — counts membership changes.

Consumer groups are tailorbot's, not Redis's ``XREADGROUP`` groups: partition ``p`` belongs
to the live member at index ``p % n`` of the sorted ``n`` live members (every poll is a
heartbeat), so one member reads a partition at a time and per-user order holds. A member
reads with ``XRANGE`` from its positions, which restart at the group's committed offsets
after every membership change. A member that takes over from a dead or departed one
therefore re-reads everything after the last commit: nothing read-but-uncommitted is lost and
nothing is skipped (there is no pending-entry list to ``XAUTOCLAIM``). Commits are fenced on
the server: a member commits only partitions that are its own at that moment, so a stalled
member that lost its session cannot move the offsets. The consumer lives in
:mod:`tailorbot.log.redis_consumer`.

Erasure and memory: ``XDEL`` makes the entries unreadable by every command at once, but Redis
frees a stream node's bytes only when the whole node is deleted, so the erased values can stay
in memory (and in RDB/AOF files) until their node goes. Run the Redis that holds the log with
``stream-node-max-entries 1`` to free them immediately (at some memory cost per entry), and
rewrite the AOF after erasures (docs/deploy.md).

Cluster mode is not supported (scripts touch keys of several partitions); use a single
primary, with replicas or Sentinel for failover. ``session_timeout`` (URL option, seconds,
default 10) is how long a member that stopped polling keeps its partitions.

>>> url = "redis://127.0.0.1:6379/0?prefix=tailorbot"
>>> log = RedisStreamsEventLog.from_url(url, partitions=4)  # doctest: +SKIP
>>> log.append([("u1", b"{}")])  # doctest: +SKIP
[(2, 0)]
"""

from __future__ import annotations

import contextlib
import weakref
from collections.abc import Sequence
from typing import Any

import redis

from tailorbot._backends import positive_float
from tailorbot._redis import READY_PROBE_TTL_MS, parse_url, plain_prefix, translate_errors
from tailorbot.log.base import EventLog, LogError, LogRecord, new_member_id
from tailorbot.log.redis_consumer import RedisStreamsConsumer, stream_record

_guard = translate_errors(LogError)

APPEND_CHUNK = 5000  # items per script call: bounds how long one call holds the server

# KEYS: partitions key, t streams, t end counters, one user index per item.
# ARGV: partition count, t, then (slot in 1..t, key, value) per item.
_APPEND = """
local n = ARGV[1]
local known = redis.call('GET', KEYS[1])
if not known then
  redis.call('SET', KEYS[1], n)
elseif known ~= n then
  return redis.error_reply('tailorbot: this log has ' .. known .. ' partitions, opened with ' .. n)
end
local t = tonumber(ARGV[2])
local items = (#ARGV - 2) / 3
local counts = {}
for i = 0, items - 1 do
  local s = tonumber(ARGV[3 + 3 * i])
  counts[s] = (counts[s] or 0) + 1
end
local nexts = {}
for s, c in pairs(counts) do
  nexts[s] = redis.call('INCRBY', KEYS[1 + t + s], c) - c
end
local out = {}
for i = 0, items - 1 do
  local s = tonumber(ARGV[3 + 3 * i])
  local offset = nexts[s]
  nexts[s] = offset + 1
  redis.call('XADD', KEYS[1 + s], string.format('%d-0', offset + 1),
             'k', ARGV[4 + 3 * i], 'v', ARGV[5 + 3 * i])
  redis.call('SADD', KEYS[1 + 2 * t + i + 1], string.format('%d', offset))
  out[i + 1] = offset
end
return out
"""

# KEYS: stream, end counter, user index. Returns the end offset.
_ERASE = """
local ids = {}
for _, o in ipairs(redis.call('SMEMBERS', KEYS[3])) do
  ids[#ids + 1] = string.format('%d-0', tonumber(o) + 1)
  if #ids == 500 then
    redis.call('XDEL', KEYS[1], unpack(ids))
    ids = {}
  end
end
if #ids > 0 then redis.call('XDEL', KEYS[1], unpack(ids)) end
redis.call('DEL', KEYS[3])
return tonumber(redis.call('GET', KEYS[2]) or '0')
"""


class RedisStreamsEventLog(EventLog):
    """An :class:`EventLog` on Redis Streams (see the module docstring for the layout)."""

    def __init__(
        self,
        client: redis.Redis,
        num_partitions: int,
        prefix: str = "tailorbot",
        session_timeout: float = 10.0,
    ) -> None:
        if not isinstance(num_partitions, int) or num_partitions < 1:
            raise ValueError(f"partitions must be a positive integer, got {num_partitions!r}")
        self.client = client
        self.num_partitions = num_partitions
        self.prefix = plain_prefix(prefix)
        self.session_timeout = positive_float(session_timeout)
        self._append = client.register_script(_APPEND)
        self._erase = client.register_script(_ERASE)
        self._consumers: weakref.WeakSet[RedisStreamsConsumer] = weakref.WeakSet()
        self._check_partition_count()

    @classmethod
    def from_url(cls, url: str, partitions: int = 8, **options: Any) -> RedisStreamsEventLog:
        """Open ``redis://host:port/db?prefix=tailorbot&session_timeout=10``; keyword
        ``options`` override the URL's."""
        client, typed = parse_url(url, {"session_timeout": positive_float}, options)
        return cls(client, partitions, **typed)

    def _check_partition_count(self) -> None:
        """Fix the partition count at the first open; refuse another one later. When the
        server is down now, the append script makes the same check."""
        key = f"{self.prefix}:log:partitions"
        try:
            self.client.set(key, self.num_partitions, nx=True)
            known = self.client.get(key)
        except (redis.ConnectionError, redis.TimeoutError):
            return
        except redis.RedisError as exc:
            raise LogError(f"redis: {exc}") from exc
        if known is not None and int(known) != self.num_partitions:
            raise ValueError(
                f"the event log under prefix {self.prefix!r} has {int(known)} partitions, opened "
                f"with {self.num_partitions}: users would change partitions; open it with "
                f"partitions={int(known)} (TAILORBOT_PARTITIONS) or use another prefix"
            )

    # --- key names ------------------------------------------------------------------
    def stream_key(self, partition: int) -> str:
        return f"{self.prefix}:log:{partition}"

    def end_key(self, partition: int) -> str:
        return f"{self.prefix}:log:{partition}:end"

    def user_key(self, user_id: str) -> str:
        return f"{self.prefix}:log:user:{user_id}"

    def group_key(self, group: str, what: str) -> str:
        return f"{self.prefix}:group:{group}:{what}"

    # --- EventLog ---------------------------------------------------------------------
    @_guard
    def append(self, items: Sequence[tuple[str, bytes]]) -> list[tuple[int, int]]:
        for key, value in items:
            if not isinstance(key, str) or not isinstance(value, bytes | bytearray | memoryview):
                raise TypeError(f"log items are (str key, bytes value), got ({key!r}, {value!r})")
        out: list[tuple[int, int]] = []
        for start in range(0, len(items), APPEND_CHUNK):
            out.extend(self._append_chunk(items[start : start + APPEND_CHUNK]))
        return out

    def _append_chunk(self, items: Sequence[tuple[str, bytes]]) -> list[tuple[int, int]]:
        partitions = [self.partition_for(key) for key, _ in items]
        touched = sorted(set(partitions))
        slot = {p: i + 1 for i, p in enumerate(touched)}
        keys = [f"{self.prefix}:log:partitions"]
        keys += [self.stream_key(p) for p in touched]
        keys += [self.end_key(p) for p in touched]
        keys += [self.user_key(key) for key, _ in items]
        args: list[str | bytes | int] = [self.num_partitions, len(touched)]
        for (key, value), p in zip(items, partitions, strict=True):
            args += [slot[p], key, value]
        offsets = self._append(keys=keys, args=args)
        return [(p, int(o)) for p, o in zip(partitions, offsets, strict=True)]

    @_guard
    def read(self, partition: int, offset: int, max_records: int) -> list[LogRecord]:
        self.check_partition(partition)
        if max_records <= 0:
            return []
        entries: Any = self.client.xrange(
            self.stream_key(partition), min=f"{max(offset, 0) + 1}-0", count=max_records
        )
        return [stream_record(partition, entry) for entry in entries]

    @_guard
    def end_offsets(self) -> dict[int, int]:
        values = self.client.mget([self.end_key(p) for p in range(self.num_partitions)])
        return {p: int(v or 0) for p, v in enumerate(values)}

    @_guard
    def committed(self, group: str) -> dict[int, int]:
        stored = self.client.hgetall(self.group_key(group, "offsets"))
        done = {int(p): int(o) for p, o in stored.items()}
        return {p: done.get(p, 0) for p in range(self.num_partitions)}

    @_guard
    def consumer(self, group: str, member_id: str | None = None) -> RedisStreamsConsumer:
        if not group:
            raise ValueError("a consumer group needs a non-empty name")
        member = member_id or new_member_id()
        consumer = RedisStreamsConsumer(self, group, member)
        self._consumers.add(consumer)
        return consumer

    @_guard
    def trim(self, partition: int, before: int) -> int:
        self.check_partition(partition)
        # entry ids are "<offset + 1>-0": MINID keeps the entries from offset `before` on
        key, minid = self.stream_key(partition), f"{before + 1}-0"
        return int(self.client.xtrim(key, minid=minid, approximate=False))

    @_guard
    def erase_user(self, user_id: str) -> int:
        p = self.partition_for(user_id)
        keys = [self.stream_key(p), self.end_key(p), self.user_key(user_id)]
        return int(self._erase(keys=keys))

    @_guard
    def ping(self) -> None:
        # A write, not PING: a replica left read-only by a failover, or an out-of-memory
        # Redis, answers PING but refuses every append (/readyz must say so).
        self.client.set(f"{self.prefix}:log:readyz", b"1", px=READY_PROBE_TTL_MS)

    def close(self) -> None:
        """Close the consumers opened here (they leave their groups), then the connections."""
        for consumer in list(self._consumers):
            with contextlib.suppress(LogError):  # the server is gone: sessions will lapse
                consumer.close()
        self.client.close()

    def __repr__(self) -> str:
        return f"RedisStreamsEventLog(prefix={self.prefix!r}, partitions={self.num_partitions})"
