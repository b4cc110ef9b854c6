"""The SQL statement timer of benchmarks/sql_writes.py: docs/benchmarks.md's figures of where
the embedded backends' write time goes come through it, so it is checked on a real log here:
every statement of a write transaction is caught, its own BEGIN and COMMIT included, grouped
with what varies between batches folded, and nothing is timed once the block is left."""

from __future__ import annotations

import sys
from collections import defaultdict
from pathlib import Path

from tailorbot.log.sqlite import SqliteEventLog

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from sql_writes import statement_kind, timing_writes  # noqa: E402


def test_statements_are_grouped_with_their_values_lists_and_partitions_folded() -> None:
    assert statement_kind("INSERT INTO records_3 VALUES (?,?,?),(?,?,?)") == (
        "INSERT INTO records_<p> VALUES (...)"
    )
    assert statement_kind("INSERT INTO records_12 VALUES (?, ?, ?)") == (
        "INSERT INTO records_<p> VALUES (...)"
    )
    assert statement_kind("SELECT a FROM t\n  WHERE k IN (?,?,?)") == (
        "SELECT a FROM t WHERE k IN (...)"
    )
    assert statement_kind("COMMIT") == "COMMIT"


def test_every_statement_of_a_write_is_timed_and_none_after(tmp_path: Path) -> None:
    log = SqliteEventLog.from_url(f"sqlite:///{tmp_path}/log.db", partitions=2)
    spent: dict[str, list[int]] = defaultdict(list)
    with timing_writes(spent):
        log.append([("u1", b"a"), ("u2", b"b"), ("u3", b"c")])
    assert len(spent["BEGIN IMMEDIATE"]) == 1 and len(spent["COMMIT"]) == 1
    # three rows: one partition's two and the other's one, or 2 + 1 in one (execute_rows)
    assert len(spent["INSERT INTO records_<p> VALUES (...)"]) == 2
    assert all(t >= 0 for times in spent.values() for t in times)
    before = {kind: len(times) for kind, times in spent.items()}
    log.append([("u1", b"d")])  # outside the block: not timed
    assert {kind: len(times) for kind, times in spent.items()} == before
    assert [r.value for p in range(2) for r in log.read_all(p)].count(b"d") == 1
    log.close()
