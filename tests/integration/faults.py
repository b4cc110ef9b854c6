"""Faults on real processes for the crash tests: a process frozen (SIGSTOP) where the test
wants it, then killed (SIGKILL) or let go on, and what a frozen stream worker has written to
the stores but not committed to the log.

The tests cannot reach into a process to stop it at a line of code; they freeze it again and
again, look at what it left in the backends while it cannot move, and act only when it was
caught where they want it (:func:`freeze_when`).
"""

from __future__ import annotations

import signal
import sqlite3
import time
from collections.abc import Callable, Collection, Sequence
from pathlib import Path
from typing import Any

import pytest

from tailorbot._sqlite import parse_sqlite_url
from tailorbot.errors import BackendError
from tailorbot.log import EventLog
from tailorbot.store import Stores
from tests.helpers import wait_until
from tests.integration.cluster import Process, live_members, member_pids

CATCH_TRIES = 1000  # bound on the tries to catch a process where it is wanted (a few do)
STOP_WAIT_S = 20.0  # bound on the wait for a SIGSTOP to take effect (no timing check)


def partitions_of(members: Sequence[str], member: str, num_partitions: int) -> range:
    """The partitions ``member`` owns among the live ``members``: both logs give partition p
    to the (p mod k)-th of the k sorted members."""
    ordered = sorted(members)
    return range(ordered.index(member), num_partitions, len(ordered))


def written_not_committed(
    log: EventLog, stores: Stores, users: Collection[str], group: str, partitions: Collection[int]
) -> dict[int, int]:
    """Of ``partitions``, those where a user's stored record holds an offset the group has not
    committed yet (a batch written to the stores, its commit still to come), with that offset."""
    committed = log.committed(group)
    ahead: dict[int, int] = {}
    for record in stores.features.get_many(users).values():
        p = record.partition
        if p in partitions and record.offset >= committed.get(p, 0):
            ahead[p] = max(ahead.get(p, -1), record.offset)
    return ahead


def frozen(pid: int) -> bool:
    """Whether the process stopped (SIGSTOP took effect: state T in /proc)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat[stat.rindex(")") + 2] in "Tt"


def wait_frozen(pid: int) -> None:
    """Wait until a SIGSTOP sent to ``pid`` took effect. It usually has by the first look;
    the next looks come every millisecond, not every 20 ms as :func:`wait_until`'s, since
    a catch may take hundreds of tries (the limit only stops a hung test)."""
    stop = time.monotonic() + STOP_WAIT_S
    while not frozen(pid):
        if time.monotonic() > stop:
            pytest.fail(f"process {pid} did not stop within {STOP_WAIT_S} s of SIGSTOP")
        time.sleep(0.001)


def freeze_through_a_hand_over(
    victim: Process,
    survivor: Process,
    log: EventLog,
    group: str,
    keep_busy: Callable[[], Collection[str]],
    files: Sequence[Path] = (),
) -> None:
    """Freeze the busy stream worker ``victim`` (SIGSTOP; not while it holds the write lock
    of one of the SQLite ``files``) until its session lapsed and
    ``survivor`` committed on the victim's partitions, then let it go on (SIGCONT), as a long
    GC pause or a frozen VM would: the batch it was in is written over the survivor's work
    (fenced), and both own those partitions until the victim sees it was out and re-joins.
    Returns once both are members again and have committed everything sent."""
    # On a busy machine the victim's short session can lapse on its own; wait for it to be
    # a member again (it re-joins at its next poll) before picking what it owns.
    found: list[Any] = []

    def victim_is_member() -> bool:
        members = live_members(log, group)
        found[:] = [(members, m) for m in members if member_pids([m]) == {victim.pid}]
        return len(found) == 1

    wait_until(victim_is_member, "the worker to freeze to be in the group", limit_s=60)
    members, mine = found[0]
    owned = partitions_of(members, mine, log.num_partitions)
    freeze_when(victim, lambda: unlocked(files), "holding no SQLite write lock", keep_busy)
    before = log.committed(group)

    def handed_over() -> bool:
        assert survivor.alive(), survivor.tail()
        keep_busy()
        committed = log.committed(group)
        return member_pids(live_members(log, group)) == {survivor.pid} and any(
            committed.get(p, 0) > before.get(p, 0) for p in owned
        )

    wait_until(handed_over, "the survivor to take the frozen worker's partitions", limit_s=60)
    victim.signal(signal.SIGCONT)

    def settled() -> bool:  # the victim back in the group, and every in-flight batch committed
        assert victim.alive(), victim.tail()
        pids = member_pids(live_members(log, group))
        return pids == {victim.pid, survivor.pid} and sum(log.lag(group).values()) == 0

    wait_until(settled, "the group to settle after the hand-over", limit_s=60)


def freeze_when(
    process: Process,
    look: Callable[[], Any],
    what: str,
    between: Callable[[], Any] = lambda: None,
    required: bool = True,
    give_up: Callable[[], bool] = lambda: False,
) -> Any:
    """Freeze ``process`` (SIGSTOP) again and again (running ``between()`` before each try)
    until ``look()``, run while it is frozen, finds something; return that and leave the
    process frozen (after a miss it goes on: SIGCONT). Not ``required``: after the last
    miss, or a miss after which ``give_up()`` (run while frozen too) says it can no longer
    be caught there, it is left frozen wherever it is, and None is returned."""
    for attempt in range(CATCH_TRIES):
        between()
        assert process.alive(), f"it ended before it was caught {what}\n{process.tail()}"
        process.signal(signal.SIGSTOP)
        wait_frozen(process.pid)
        try:
            found = look()
        except BackendError:
            # Frozen in the middle of a SQLite write, it can hold the WAL index a reader
            # needs ("locking protocol"): not caught there, try another moment.
            found = None
        if found:
            return found
        if not required and (attempt == CATCH_TRIES - 1 or give_up()):
            return None
        process.signal(signal.SIGCONT)
    pytest.fail(f"never caught {what}\n{process.tail()}")


def catch_and_kill(
    process: Process,
    look: Callable[[], Any],
    what: str,
    between: Callable[[], Any] = lambda: None,
    required: bool = True,
    give_up: Callable[[], bool] = lambda: False,
) -> Any:
    """As :func:`freeze_when`, then SIGKILL the process right where it was caught."""
    found = freeze_when(process, look, what, between, required, give_up)
    process.signal(signal.SIGKILL)
    process.popen.wait()
    return found


def sqlite_files(*urls: str) -> list[Path]:
    """The files of those backend URLs that are SQLite databases."""
    return [parse_sqlite_url(url)[0] for url in urls if url.startswith("sqlite:")]


def unlocked(files: Sequence[Path]) -> bool:
    """Whether no process holds the write lock of any of these SQLite files (a process frozen
    with it would stall every other: an embedded backend has no lease to break)."""
    for path in files:
        conn = sqlite3.connect(path, timeout=0.05, isolation_level=None)
        try:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("ROLLBACK")
        except sqlite3.OperationalError:
            return False
        finally:
            conn.close()
    return True


def kill_between_write_and_commit(
    victim: Process,
    log: EventLog,
    stores: Stores,
    group: str,
    keep_busy: Callable[[], Collection[str]],
) -> dict[int, int]:
    """SIGKILL the stream worker ``victim`` with a batch written to the stores and not yet
    committed to the log (``keep_busy`` appends work before each look and returns every user
    so far). Returns the partitions it was caught in, with the offsets written past their
    commit."""
    users: Collection[str] = ()

    def busy() -> None:
        nonlocal users
        users = keep_busy()

    def look() -> dict[int, int]:
        members = live_members(log, group)
        mine = [m for m in members if member_pids([m]) == {victim.pid}]
        if not mine:
            return {}
        owned = partitions_of(members, mine[0], log.num_partitions)
        return written_not_committed(log, stores, users, group, owned)

    caught: dict[int, int] = catch_and_kill(victim, look, "between a write and its commit", busy)
    return caught
