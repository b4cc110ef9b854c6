"""Group commit: appends that arrive while a transaction runs share the next one, each
caller gets its own result, and a failed transaction fails exactly its callers."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tailorbot.log import LogError
from tailorbot.log.group_commit import GroupCommit
from tailorbot.log.sqlite import SqliteEventLog
from tests.helpers import wait_until


class Blocking:
    """A commit function whose first call waits until released; records every call."""

    def __init__(self, fail_on: str | None = None) -> None:
        self.calls: list[list[str]] = []
        self.release = threading.Event()
        self.fail_on = fail_on

    def __call__(self, jobs: Sequence[str]) -> list[str]:
        if not self.calls:
            self.calls.append(list(jobs))
            self.release.wait(30)
        else:
            self.calls.append(list(jobs))
        if self.fail_on in jobs:
            raise LogError(f"refused {self.fail_on}")
        return [job.upper() for job in jobs]


def test_callers_queued_behind_a_transaction_share_the_next_one() -> None:
    commit = Blocking()
    group: GroupCommit[str, str] = GroupCommit(commit)
    with ThreadPoolExecutor(8) as pool:
        first = pool.submit(group.submit, "a")
        wait_until(lambda: len(commit.calls) == 1, "the first transaction to start")
        rest = [pool.submit(group.submit, job) for job in "bcdefg"]
        wait_until(lambda: len(group._queue) == 6, "the others to queue")
        commit.release.set()
        assert first.result() == "A"
        assert [f.result() for f in rest] == list("BCDEFG")
    assert commit.calls[0] == ["a"]
    assert sorted(commit.calls[1]) == list("bcdefg"), "one transaction for all who waited"
    assert len(commit.calls) == 2


def test_a_failed_transaction_fails_its_callers_only() -> None:
    commit = Blocking(fail_on="c")
    group: GroupCommit[str, str] = GroupCommit(commit)
    with ThreadPoolExecutor(4) as pool:
        first = pool.submit(group.submit, "a")
        wait_until(lambda: len(commit.calls) == 1, "the first transaction to start")
        shared = [pool.submit(group.submit, job) for job in "bc"]
        wait_until(lambda: len(group._queue) == 2, "the others to queue")
        commit.release.set()
        assert first.result() == "A"
        for future in shared:
            with pytest.raises(LogError, match="refused c"):
                future.result()
    assert group.submit("d") == "D", "the next caller commits again"


def test_concurrent_appends_get_consecutive_distinct_offsets(tmp_path: Path) -> None:
    log = SqliteEventLog(tmp_path / "log.db", partitions=2)

    def append(i: int) -> list[tuple[int, int]]:
        return log.append([(f"user-{i % 5}", f"{i}-{j}".encode()) for j in range(10)])

    with ThreadPoolExecutor(16) as pool:
        placed = list(pool.map(append, range(200)))
    everything = [pos for positions in placed for pos in positions]
    assert len(set(everything)) == 2000, "no offset given twice"
    for positions in placed:  # a caller's records of one partition are consecutive
        by_partition: dict[int, list[int]] = {}
        for p, offset in positions:
            by_partition.setdefault(p, []).append(offset)
        for offsets in by_partition.values():
            assert offsets == list(range(offsets[0], offsets[0] + len(offsets)))
    for i, positions in enumerate(placed):
        values = [log.read(p, off, 1)[0].value for p, off in positions]
        assert values == [f"{i}-{j}".encode() for j in range(10)]
    assert sum(log.end_offsets().values()) == 2000
    log.close()
