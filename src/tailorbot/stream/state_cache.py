"""The stream worker's cache of the feature records it wrote itself (bounded, by write time).

Only the member that owns a log partition writes the feature records of its users, so between
two batches of the same member the store holds exactly what the member wrote last: reading
and decoding those records again is wasted work. The cache keeps the written
:class:`~tailorbot.store.base.FeatureRecord` (its state a live dict, which the next batch
updates in place) and hands it to the next batch instead of ``store.get_many``. It answers
only while that reasoning holds; a partition's entries are dropped (its users re-read from
the store) at the first batch where

* the partition is not in the member's assignment, or was not at the previous batch (a newly
  gained partition is always read from the store);
* the group's committed offset of the partition is not the one the member committed last
  (someone else moved it on: a rebalance the member did not notice between two batches);
* the batch's first record of the partition is not the one after the member's last commit.

The worker also drops a user's entry when the user's erasure watermark is above the entry's
offset (erased, or consent withdrawn), when the user has no personalization consent, when a
batch with the user fails before its commit (the state may be half-applied), when the store
refused the user's record (another member wrote a newer one), and everything when it
re-joins the group. Beyond ``maxsize`` users or ``max_events`` retained events (the length of
the states' ``ts`` lists), the least recently written entries go; an entry goes too
``max_idle_s`` after its write (:meth:`expire`, every poll), so a user's data, an erased
user's included, stays in the worker's memory at most that long after their last event even
when they never come back (the watermark check above only runs when they do), and never past
a store's copy that expires later than that (a Redis ``record_ttl``).

Memory, measured: about 2.5 KB per cached user plus about 100 bytes per retained event.

>>> from tailorbot.store.base import FeatureRecord
>>> cache = StateCache(maxsize=2)
>>> cache.begin(frozenset({0, 1}), committed={}, first_offsets={})
>>> cache.keep([FeatureRecord("u1", {"ts": [1.0]}, partition=0, offset=4, event_time=1.0,
...                           updated_at=2.0)], {0: 5})
>>> cache.begin(frozenset({0, 1}), committed={0: 5}, first_offsets={0: 5})
>>> cache.get("u1", 0).state
{'ts': [1.0]}
>>> cache.begin(frozenset({0, 1}), committed={0: 9}, first_offsets={0: 9})  # not by us
>>> cache.get("u1", 0) is None
True
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence

from tailorbot.store.base import FeatureRecord


class StateCache:
    """Feature records written by one consumer-group member, for the partitions it owns.

    ``maxsize`` is the most users kept (0 turns the cache off: every batch reads the store);
    ``max_events`` bounds the events retained by their states, summed (memory);
    ``max_idle_s`` is how long an entry is kept after its write, in seconds of ``clock``.
    """

    def __init__(
        self,
        maxsize: int = 100_000,
        max_events: int = 2_000_000,
        max_idle_s: float = 600.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if maxsize < 0 or max_events < 0:
            raise ValueError(
                f"state cache bounds must be >= 0 (0 turns it off), got maxsize={maxsize}, "
                f"max_events={max_events}"
            )
        if not max_idle_s > 0:
            raise ValueError(f"max_idle_s must be > 0, got {max_idle_s}")
        self.maxsize = maxsize
        self.max_events = max_events
        self.max_idle_s = max_idle_s
        self.clock = clock
        # user -> (record, its state's retained events when kept, when kept), least recently
        # kept first: so the idle ones are at the front
        self._entries: OrderedDict[str, tuple[FeatureRecord, int, float]] = OrderedDict()
        self._events = 0
        self._owned: frozenset[int] = frozenset()
        self._next: dict[int, int] = {}  # partition -> offset committed after the last batch

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, user_id: object) -> bool:
        return user_id in self._entries

    def begin(
        self,
        owned: frozenset[int],
        committed: Mapping[int, int],
        first_offsets: Mapping[int, int],
    ) -> None:
        """Start a batch. ``owned``: the assignment now; ``committed``: the group's committed
        offsets now; ``first_offsets``: per partition, the offset of the batch's first record.
        Drops the entries of every partition that can no longer be trusted."""
        stale = {p for p, done in self._next.items() if p not in owned or committed.get(p) != done}
        stale.update(p for p, first in first_offsets.items() if self._next.get(p, first) != first)
        self._owned = owned
        if stale:
            for partition in stale:
                self._next.pop(partition, None)
            self.discard([u for u, (r, _, _) in self._entries.items() if r.partition in stale])

    def get(self, user_id: str, partition: int) -> FeatureRecord | None:
        """The record last written for ``user_id`` in ``partition``; None: read the store.
        (A read does not make the entry younger: it is kept for ``max_idle_s`` after its
        write, so never past a store's TTL that is longer, even while batches of duplicates
        write nothing.)"""
        entries = self._entries
        entry = entries.get(user_id)
        if entry is None:
            return None
        if entry[0].partition != partition:
            self.discard((user_id,))
            return None
        return entry[0]

    def expire(self) -> int:
        """Drop the entries kept ``max_idle_s`` ago or longer; how many."""
        entries = self._entries
        oldest = self.clock() - self.max_idle_s
        dropped = 0
        while entries:
            user_id, (_, events, used) = next(iter(entries.items()))
            if used > oldest:
                break
            del entries[user_id]
            self._events -= events
            dropped += 1
        return dropped

    def keep(self, records: Sequence[FeatureRecord], next_offsets: Mapping[int, int]) -> None:
        """Remember ``records``, just written by a batch that committed ``next_offsets``.
        Records of partitions not owned at :meth:`begin` are not kept."""
        if not self.maxsize or not self.max_events:
            return
        owned, entries, now = self._owned, self._entries, self.clock()
        for partition, offset in next_offsets.items():
            if partition in owned:
                self._next[partition] = offset
        for record in records:
            if record.partition not in owned:
                continue
            old = entries.pop(record.user_id, None)
            if old is not None:
                self._events -= old[1]
            events = len(record.state.get("ts") or ())
            entries[record.user_id] = (record, events, now)
            self._events += events
        while entries and (len(entries) > self.maxsize or self._events > self.max_events):
            self._events -= entries.popitem(last=False)[1][1]

    def discard(self, user_ids: Iterable[str]) -> None:
        """Forget these users (their next batch reads the store)."""
        entries = self._entries
        for user_id in user_ids:
            old = entries.pop(user_id, None)
            if old is not None:
                self._events -= old[1]

    def clear(self) -> None:
        """Forget every entry and every partition's position."""
        self._entries.clear()
        self._events = 0
        self._next.clear()
        self._owned = frozenset()
