"""Consumer groups of the embedded event log: membership rows with an expiry, and members.

A member is a row of ``group_members`` with an expiry that its polls renew; the partitions
are spread over the sorted ids of the live members, so every member computes the same
assignment without a coordinator. A commit is fenced: only the partitions the committing
member owns at that moment are written.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import TYPE_CHECKING

from tailorbot._sqlite import SqliteFile
from tailorbot.log.base import Consumer, LogError, LogRecord

if TYPE_CHECKING:
    from tailorbot.log.sqlite import SqliteEventLog

# Between two checks of an idle log while a poll waits for records: the first pause, which
# doubles after each dry check up to the longest. A check reads the group's members and the
# file's change token (tens of microseconds with the wake-up): every millisecond, an idle
# worker spent 8-9 % of a core on them (benchmarks/probe_cost.py). Records that follow
# others closely are picked up within a millisecond or two; the first after a quiet spell
# within MAX_IDLE_SLEEP_S.
IDLE_SLEEP_S = 0.001
MAX_IDLE_SLEEP_S = 0.016


class SqliteGroups:
    """The group tables of one log file (``num_partitions`` partitions)."""

    def __init__(self, file: SqliteFile, num_partitions: int, session_timeout: float) -> None:
        self.file = file
        self.num_partitions = num_partitions
        self.session_timeout = session_timeout
        # group -> (change token, (member, expiry) rows): read again after any commit
        self._rows: dict[str, tuple[tuple[int, int], list[tuple[str, float]]]] = {}

    def members(self, group: str, heartbeat_of: str | None = None) -> list[str]:
        """Live members of ``group``, sorted; renews ``heartbeat_of`` first when given."""
        now = time.time()
        if heartbeat_of is None:
            # Members change only by commits (a join, a heartbeat, a leave) or by expiring:
            # the rows are read again when the file changed, the expiry is checked here.
            token = self.file.change_token()
            cached = self._rows.get(group)
            if cached is None or cached[0] != token:
                with self.file.read() as conn:
                    rows = conn.execute(
                        "SELECT member_id, expires_at FROM group_members WHERE grp = ? "
                        "ORDER BY member_id",
                        (group,),
                    ).fetchall()
                cached = self._rows[group] = (token, rows)
            return [member for member, expires_at in cached[1] if expires_at > now]
        with self.file.write() as conn:
            conn.execute(
                "INSERT INTO group_members VALUES (?, ?, ?) "
                "ON CONFLICT (grp, member_id) DO UPDATE SET expires_at = excluded.expires_at",
                (group, heartbeat_of, now + self.session_timeout),
            )
            conn.execute(
                "DELETE FROM group_members WHERE grp = ? AND expires_at <= ?", (group, now)
            )
            rows = conn.execute(
                "SELECT member_id FROM group_members WHERE grp = ? ORDER BY member_id", (group,)
            ).fetchall()
        return [member for (member,) in rows]

    def owned_by(self, members: list[str], member_id: str) -> frozenset[int]:
        """Deterministic spread: partition p goes to the (p mod k)-th of k sorted live members."""
        if member_id not in members:
            return frozenset()
        return frozenset(range(members.index(member_id), self.num_partitions, len(members)))

    def commit(self, group: str, member_id: str, offsets: Mapping[int, int]) -> None:
        with self.file.write() as conn:
            rows = conn.execute(
                "SELECT member_id FROM group_members WHERE grp = ? AND expires_at > ? "
                "ORDER BY member_id",
                (group, time.time()),
            ).fetchall()
            owned = self.owned_by([member for (member,) in rows], member_id)
            conn.executemany(
                "INSERT INTO group_offsets VALUES (?, ?, ?) "
                "ON CONFLICT (grp, partition) DO UPDATE SET next_offset = excluded.next_offset",
                [(group, p, int(off)) for p, off in offsets.items() if p in owned],
            )

    def leave(self, group: str, member_id: str) -> None:
        with self.file.write() as conn:
            conn.execute(
                "DELETE FROM group_members WHERE grp = ? AND member_id = ?", (group, member_id)
            )


class SqliteConsumer(Consumer):
    """A member of a consumer group of a :class:`SqliteEventLog`.

    Membership is a row with an expiry that :meth:`assignment` (called by every poll) renews
    a few times per session timeout; members whose row expired are gone from the group.
    """

    def __init__(self, log: SqliteEventLog, group: str, member_id: str) -> None:
        self.log = log
        self.group = group
        self.member_id = member_id
        self._owned: frozenset[int] = frozenset()
        self._positions: dict[int, int] = {}
        self._last_heartbeat = self._next_heartbeat = 0.0
        self._polls = 0  # rotates which partition a poll reads first, so none starves
        self._idle_at: tuple[int, int] | None = None  # the file's change token at a dry poll
        self._closed = False
        self.assignment()  # join now, so that the others make room at their next poll

    def assignment(self) -> frozenset[int]:
        if self._closed:
            raise LogError(f"consumer {self.member_id} of group {self.group!r} is closed")
        now = time.monotonic()
        renew = now >= self._next_heartbeat
        # Silent past the session timeout: the group may have moved on without us, even if
        # we get the same partitions back.
        lapsed = renew and now - self._last_heartbeat >= self.log.session_timeout
        groups = self.log.groups
        members = groups.members(self.group, heartbeat_of=self.member_id if renew else None)
        if renew:
            self._last_heartbeat = now
            self._next_heartbeat = now + self.log.session_timeout / 4
        owned = groups.owned_by(members, self.member_id)
        if owned != self._owned or lapsed:
            # A rebalance: every owned partition resumes from the group's committed offset.
            committed = self.log.committed(self.group)
            self._owned = owned
            self._positions = {p: committed[p] for p in owned}
            self._idle_at = None
        return owned

    def poll(self, max_records: int, timeout_s: float = 0.0) -> list[LogRecord]:
        """Records of the owned partitions; with ``timeout_s``, wait that long for some,
        checking the file's change token after pauses from :data:`IDLE_SLEEP_S` doubling up
        to :data:`MAX_IDLE_SLEEP_S` (the partitions are read again only once someone
        committed to the file since the last dry read)."""
        if max_records < 1:
            raise ValueError(f"max_records must be >= 1, got {max_records}")
        deadline = time.monotonic() + timeout_s
        pause = IDLE_SLEEP_S
        while True:
            order = sorted(self.assignment())
            token = self.log.change_token()  # before reading: a later commit changes it
            out = [] if token == self._idle_at else self._read(order, max_records)
            self._idle_at = None if out else token
            remaining = deadline - time.monotonic()
            if out or remaining <= 0:
                return out
            time.sleep(min(pause, remaining))
            pause = min(2 * pause, MAX_IDLE_SLEEP_S)

    def _read(self, order: list[int], max_records: int) -> list[LogRecord]:
        """Up to ``max_records`` from the partitions of ``order``, starting at a different
        partition each time, so that none starves."""
        out: list[LogRecord] = []
        self._polls += 1
        first = self._polls % len(order) if order else 0
        for p in order[first:] + order[:first]:
            if len(out) >= max_records:
                break
            chunk = self.log.read(p, self._positions[p], max_records - len(out))
            if chunk:
                self._positions[p] = chunk[-1].offset + 1
                out.extend(chunk)
        return out

    def commit(self, offsets: Mapping[int, int]) -> None:
        if self._closed:
            raise LogError(f"consumer {self.member_id} of group {self.group!r} is closed")
        mine = {p: off for p, off in offsets.items() if p in self._owned}
        if mine:
            self.log.groups.commit(self.group, self.member_id, mine)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if not self.log.groups.file.closed:
            self.log.groups.leave(self.group, self.member_id)

    def __repr__(self) -> str:
        return f"SqliteConsumer(group={self.group!r}, member_id={self.member_id!r})"
