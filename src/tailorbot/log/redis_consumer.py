"""A member of a consumer group of :class:`~tailorbot.log.redis_streams.RedisStreamsEventLog`.

Membership lives in ``{prefix}:group:{g}:members`` (a sorted set scored by each member's
session deadline, in server time); every poll and :meth:`RedisStreamsConsumer.assignment` is
a heartbeat. Partition ``p`` belongs to the member at index ``p % n`` of the ``n`` sorted live
members. A member reads its partitions with ``XRANGE`` from its positions, which restart at
the group's committed offsets (``{prefix}:group:{g}:offsets``) after every membership change
(``{prefix}:group:{g}:generation`` counts them), like a Kafka consumer after a rebalance. So a
member taking over from a dead or departed one re-reads everything after the last commit —
nothing is lost or skipped — and no Redis pending-entry list needs claiming. A commit goes
through only for partitions the member owns at that moment, checked on the server.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from tailorbot._redis import translate_errors
from tailorbot.log.base import Consumer, LogError, LogRecord

if TYPE_CHECKING:
    from tailorbot.log.redis_streams import RedisStreamsEventLog


def stream_record(partition: int, entry: Any) -> LogRecord:
    """The log record of a stream entry: entry id ``{offset+1}-0``, fields ``k`` and ``v``."""
    entry_id, fields = entry
    return LogRecord(
        partition=partition,
        offset=int(entry_id.split(b"-", 1)[0]) - 1,
        key=fields[b"k"].decode(),
        value=fields[b"v"],
    )


_guard = translate_errors(LogError)

# Shared by the group scripts: server time, and this member's index among the sorted live
# members (KEYS[1] scored by session deadline; ARGV[1] is the member).
_LIVE = """
if redis.replicate_commands then redis.replicate_commands() end
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local function my_index()
  local live = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. now, '+inf')
  table.sort(live)
  for i, m in ipairs(live) do
    if m == ARGV[1] then return i - 1, #live end
  end
  return nil, #live
end
"""

# KEYS: members, offsets, generation, the end counter of every partition.
# ARGV: member, session ms, partition count. Renews the member (joining when new), counts a
# new generation when the membership changed, and returns the member's partitions with their
# committed and end offsets, and the generation.
_HEARTBEAT = (
    _LIVE
    + """
local session = tonumber(ARGV[2])
local expired = redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local joined = redis.call('ZADD', KEYS[1], now + session, ARGV[1])
redis.call('PEXPIRE', KEYS[1], session)
local generation
if expired + joined > 0 then
  generation = redis.call('INCR', KEYS[3])
else
  generation = tonumber(redis.call('GET', KEYS[3]) or '0')
end
local index, size = my_index()
local owned, committed, ends = {}, {}, {}
for p = index, tonumber(ARGV[3]) - 1, size do
  owned[#owned + 1] = p
  committed[#committed + 1] = tonumber(redis.call('HGET', KEYS[2], p) or '0')
  ends[#ends + 1] = tonumber(redis.call('GET', KEYS[4 + p]) or '0')
end
return {owned, committed, ends, generation}
"""
)

# KEYS: members, offsets. ARGV: member, session ms, then (partition, offset) pairs.
# Commits only the partitions the member owns now; returns them.
_COMMIT = (
    _LIVE
    + """
local index, size = my_index()
local done = {}
if index == nil then return done end
redis.call('ZADD', KEYS[1], 'XX', now + tonumber(ARGV[2]), ARGV[1])
for i = 3, #ARGV, 2 do
  local p = tonumber(ARGV[i])
  if p % size == index then
    redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1])
    done[#done + 1] = p
  end
end
return done
"""
)


class RedisStreamsConsumer(Consumer):
    """One member of a consumer group of a :class:`RedisStreamsEventLog`."""

    def __init__(self, log: RedisStreamsEventLog, group: str, member_id: str) -> None:
        self.log = log
        self.group = group
        self.member_id = member_id
        self._positions: dict[int, int] = {}  # owned partition -> next offset to read
        self._ends: dict[int, int] = {}  # owned partition -> end offset at the last heartbeat
        self._generation = -1  # the group's membership generation at the last heartbeat
        self._closed = False
        self._heartbeat = log.client.register_script(_HEARTBEAT)
        self._commit = log.client.register_script(_COMMIT)
        self.assignment()  # join now, so that the others make room at their next poll

    @_guard
    def assignment(self) -> frozenset[int]:
        return frozenset(self._renew())

    @_guard
    def poll(self, max_records: int, timeout_s: float = 0.0) -> list[LogRecord]:
        if max_records < 1:
            raise ValueError(f"max_records must be >= 1, got {max_records}")
        deadline = time.monotonic() + max(timeout_s, 0.0)
        while True:
            records = self._fetch(max_records)
            remaining = deadline - time.monotonic()
            if records or remaining <= 0:
                return records
            self._wait(remaining)

    @_guard
    def commit(self, offsets: Mapping[int, int]) -> None:
        self._check_open()
        if not offsets:
            return
        log = self.log
        args: list[str | int] = [self.member_id, int(log.session_timeout * 1000)]
        for p, o in offsets.items():
            log.check_partition(p)
            args += [p, int(o)]
        keys = [log.group_key(self.group, "members"), log.group_key(self.group, "offsets")]
        self._commit(keys=keys, args=args)

    @_guard
    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._positions.clear()
        self._ends.clear()
        pipe = self.log.client.pipeline(transaction=True)
        pipe.zrem(self.log.group_key(self.group, "members"), self.member_id)
        pipe.incr(self.log.group_key(self.group, "generation"))
        pipe.execute()

    def __repr__(self) -> str:
        return f"RedisStreamsConsumer(group={self.group!r}, member_id={self.member_id!r})"

    # --- internals ----------------------------------------------------------------------
    def _check_open(self) -> None:
        if self._closed:
            raise LogError(f"consumer {self.member_id} of group {self.group!r} is closed")

    def _renew(self) -> list[int]:
        """Heartbeat. After a membership change (a rebalance, or this member's own session
        having lapsed) every partition resumes from the group's committed offset, like a
        Kafka consumer after a rebalance; otherwise reading goes on where it was."""
        self._check_open()
        log = self.log
        keys = [log.group_key(self.group, what) for what in ("members", "offsets", "generation")]
        keys += [log.end_key(p) for p in range(log.num_partitions)]
        args: list[str | int] = [
            self.member_id,
            int(log.session_timeout * 1000),
            log.num_partitions,
        ]
        owned, committed, ends, generation = self._heartbeat(keys=keys, args=args)
        owned = [int(p) for p in owned]
        if int(generation) != self._generation:
            self._generation = int(generation)
            self._positions = {}
        self._positions = {
            p: self._positions.get(p, int(c)) for p, c in zip(owned, committed, strict=True)
        }
        self._ends = {p: int(e) for p, e in zip(owned, ends, strict=True)}
        return owned

    def _fetch(self, max_records: int) -> list[LogRecord]:
        self._renew()
        backlog = {p: self._ends[p] - pos for p, pos in self._positions.items()}
        share = fair_share(backlog, max_records)
        if not share:
            return []
        pipe = self.log.client.pipeline(transaction=False)
        for p, count in share.items():
            pipe.xrange(self.log.stream_key(p), min=f"{self._positions[p] + 1}-0", count=count)
        records: list[LogRecord] = []
        for (p, count), entries in zip(share.items(), pipe.execute(), strict=True):
            batch = [stream_record(p, entry) for entry in entries]
            records.extend(batch)
            after = batch[-1].offset + 1 if batch else self._positions[p]
            # Fewer entries than asked: everything below the end seen at the heartbeat was
            # read or erased, so skip the erased gap instead of asking for it again.
            self._positions[p] = after if len(batch) == count else max(after, self._ends[p])
        return records

    def _wait(self, remaining: float) -> None:
        """Block until a record arrives on an owned partition, or a slice of ``remaining``
        passes (short enough to keep heartbeating and within the socket timeout)."""
        log = self.log
        slice_s = min(remaining, log.session_timeout / 3, 1.0)
        if not self._positions:
            time.sleep(slice_s)
            return
        streams: dict[Any, Any] = {
            log.stream_key(p): f"{pos}-0" for p, pos in self._positions.items()
        }
        log.client.xread(streams, count=1, block=max(1, int(slice_s * 1000)))


def fair_share(backlog: Mapping[int, int], budget: int) -> dict[int, int]:
    """Split ``budget`` reads over partitions with a backlog, smallest first, so that a busy
    partition cannot starve the others (water filling).

    >>> fair_share({0: 1, 1: 100, 2: 0, 3: 100}, 11)
    {0: 1, 1: 5, 3: 5}
    """
    share: dict[int, int] = {}
    waiting = sorted((b, p) for p, b in backlog.items() if b > 0)
    for i, (size, p) in enumerate(waiting):
        if budget <= 0:
            break
        take = min(size, max(1, budget // (len(waiting) - i)))
        share[p] = take
        budget -= take
    return dict(sorted(share.items()))
