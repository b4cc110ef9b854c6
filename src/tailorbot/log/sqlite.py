"""The embedded event log: one SQLite file (WAL mode) shared by the server and its workers.

Each partition's records live in a table of their own (``records_0``, ``records_1``...),
keyed by offset: an append adds rows at the end of each table's B-tree, where SQLite adds
pages without rebalancing their neighbours. (One ``WITHOUT ROWID`` table keyed ``(partition,
offset)``, as before, took an append into the middle of the tree for every partition but
the last: 2.3-2.5 times the CPU per record, benchmarks/log_append.py.) A file made with that
table is moved to the new layout when it is opened, in one transaction. Each partition's
next offset is kept in a table of its own, so offsets are never reused, not even after
erasure deleted the newest records. The partition count is stored in the file: reopening it
with another count is an error, since it would move users to other partitions.

Any number of threads and processes (the server, ``tailorbot worker`` processes) share the
file; an append is one short transaction, shared by the appends of other threads that
arrive while one runs (group commit, log/group_commit.py). Consumer groups live in the file
too: a member is a row with an expiry that polls renew; the partitions are spread over the
sorted ids of the live members, so every member computes the same assignment.
:meth:`SqliteEventLog.erase_user` deletes the user's records and scrubs the files
(``secure_delete`` plus a truncating WAL checkpoint), so no byte of them stays on disk.

URL: ``sqlite:///relative/log.db`` or ``sqlite:////absolute/log.db`` (parent directories are
created), with optional query options:

* ``synchronous`` — ``normal`` (default: an appended batch survives a crash of the process;
  a power loss may drop the last batches) or ``full``/``extra`` (fsync at every append).
* ``busy_timeout`` — seconds to wait while another process writes (default 5).
* ``session_timeout`` — seconds a consumer stays in its group without a heartbeat (default 10).

>>> import tempfile
>>> log = SqliteEventLog.from_url(f"sqlite:///{tempfile.mkdtemp()}/log.db", partitions=4)
>>> log.append([("u1", b"hello"), ("u1", b"again")])
[(2, 0), (2, 1)]
>>> consumer = log.consumer("features")
>>> [r.value for r in consumer.poll(10)]
[b'hello', b'again']
>>> consumer.commit({2: 2})
>>> log.lag("features")[2]
0
>>> log.close()
"""

from __future__ import annotations

import weakref
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import orjson

from tailorbot._backends import positive_float, typed_options
from tailorbot._sqlite import SqliteFile, execute_rows, parse_sqlite_url
from tailorbot.log.base import EventLog, LogError, LogRecord, new_member_id
from tailorbot.log.group_commit import GroupCommit
from tailorbot.log.sqlite_groups import SqliteConsumer, SqliteGroups

SCHEMA = """
CREATE TABLE IF NOT EXISTS log_meta (
    name TEXT PRIMARY KEY, value TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS partitions (
    partition INTEGER PRIMARY KEY, next_offset INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS group_offsets (
    grp TEXT NOT NULL, partition INTEGER NOT NULL, next_offset INTEGER NOT NULL,
    PRIMARY KEY (grp, partition)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS group_members (
    grp TEXT NOT NULL, member_id TEXT NOT NULL, expires_at REAL NOT NULL,
    PRIMARY KEY (grp, member_id)
) WITHOUT ROWID;
"""

# A partition's records (made by _init_partitions: the partition count is the file's), the
# offset the rowid. A file from before kept every partition's in one table, LEGACY_RECORDS.
RECORDS_TABLE = (
    "CREATE TABLE IF NOT EXISTS {table} "
    "(offset INTEGER PRIMARY KEY, key TEXT NOT NULL, value BLOB NOT NULL)"
)
LEGACY_RECORDS = "records"
# Every partition's next offset in one row (one SQLite step, see _sqlite.execute_rows).
SELECT_ENDS = "SELECT json_group_object(partition, next_offset) FROM partitions"
# The records a group has not committed, summed over the partitions (one row).
SELECT_TOTAL_LAG = (
    "SELECT coalesce(sum(max(0, p.next_offset - coalesce(g.next_offset, 0))), 0) "
    "FROM partitions p LEFT JOIN group_offsets g ON g.grp = ? AND g.partition = p.partition"
)
URL_OPTIONS: dict[str, Callable[[str], Any]] = {
    "synchronous": str,
    "busy_timeout": positive_float,
    "session_timeout": positive_float,
}
BLOB_TYPES = (bytes, bytearray, memoryview)


class SqliteEventLog(EventLog):
    """A user-partitioned event log in one SQLite file, with consumer groups."""

    def __init__(
        self,
        path: str | Path,
        partitions: int = 8,
        synchronous: str = "normal",
        busy_timeout: float = 5.0,
        session_timeout: float = 10.0,
    ) -> None:
        if not isinstance(partitions, int) or partitions < 1:
            raise ValueError(f"partitions must be a positive integer, got {partitions!r}")
        self.path = path
        self.num_partitions = partitions
        self.synchronous = synchronous
        self.busy_timeout = busy_timeout
        self.session_timeout = positive_float(session_timeout)
        self._file = SqliteFile(Path(path), SCHEMA, LogError, synchronous, busy_timeout)
        self.groups = SqliteGroups(self._file, partitions, self.session_timeout)
        self._consumers: weakref.WeakSet[SqliteConsumer] = weakref.WeakSet()
        self._appends = GroupCommit(self._write_appends)
        # each partition's statements, made once (a table's name cannot be a parameter)
        self._tables = [f"records_{p}" for p in range(partitions)]
        self._reads = [
            f"SELECT offset, key, value FROM {table} WHERE offset >= ? ORDER BY offset LIMIT ?"
            for table in self._tables
        ]
        try:
            self._init_partitions()
        except BaseException:
            self._file.close()
            raise

    @classmethod
    def from_url(cls, url: str, partitions: int = 8, **options: Any) -> SqliteEventLog:
        """Open ``sqlite:///path?option=value``; keyword ``options`` override the URL's."""
        path, url_options = parse_sqlite_url(url)
        typed = typed_options(url_options, options, URL_OPTIONS, "sqlite")
        return cls(path, partitions=partitions, **typed)

    def _init_partitions(self) -> None:
        with self._file.write() as conn:
            row = conn.execute("SELECT value FROM log_meta WHERE name = 'partitions'").fetchone()
            if row is None:
                conn.execute(
                    "INSERT INTO log_meta VALUES ('partitions', ?)", (str(self.num_partitions),)
                )
                conn.executemany(
                    "INSERT INTO partitions VALUES (?, 0)",
                    [(p,) for p in range(self.num_partitions)],
                )
            elif int(row[0]) != self.num_partitions:
                raise ValueError(
                    f"the event log {self.path} has {row[0]} partitions, opened with "
                    f"{self.num_partitions}: users would change partitions; open it with "
                    f"partitions={row[0]} (TAILORBOT_PARTITIONS) or start a new log file"
                )
            legacy = conn.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (LEGACY_RECORDS,)
            ).fetchone()
            for p, table in enumerate(self._tables):
                conn.execute(RECORDS_TABLE.format(table=table))
                if legacy is not None:  # a file from before: its records moved, in this transaction
                    conn.execute(
                        f"INSERT INTO {table} SELECT offset, key, value FROM {LEGACY_RECORDS} "
                        "WHERE partition = ?",
                        (p,),
                    )
            if legacy is not None:
                conn.execute(f"DROP TABLE {LEGACY_RECORDS}")

    # --- writing ---------------------------------------------------------------------
    def append(self, items: Sequence[tuple[str, bytes]]) -> list[tuple[int, int]]:
        if not items:
            return []
        n = self.num_partitions
        try:
            parts = [zlib.crc32(key.encode()) % n for key, _ in items]  # = partition_for
        except AttributeError:
            parts = []
        if len(parts) != len(items) or not all(isinstance(v, BLOB_TYPES) for _, v in items):
            bad = next(
                (key, value)
                for key, value in items
                if not isinstance(key, str) or not isinstance(value, BLOB_TYPES)
            )
            raise TypeError(f"log items are (str key, bytes value) pairs, got {bad!r:.200}")
        return self._appends.submit((parts, items))

    def _write_appends(
        self, jobs: Sequence[tuple[list[int], Sequence[tuple[str, bytes]]]]
    ) -> list[list[tuple[int, int]]]:
        """One transaction for the appends of several threads (group commit): each job's
        ``(partitions, items)`` get consecutive offsets in their partitions, in job order."""
        placed: list[list[tuple[int, int]]] = []
        rows: dict[int, list[tuple[int, str, bytes]]] = {}  # by partition
        # One statement per partition written, whatever its number of rows (see
        # execute_rows): an append holds the write lock for a handful of SQLite steps.
        with self._file.write() as conn:
            (ends,) = conn.execute(SELECT_ENDS).fetchone()
            next_offset = {int(p): end for p, end in orjson.loads(ends).items()}
            for parts, items in jobs:
                positions = []
                for p, (key, value) in zip(parts, items, strict=True):
                    offset = next_offset[p]
                    next_offset[p] = offset + 1
                    positions.append((p, offset))
                    found = rows.get(p)
                    if found is None:
                        found = rows[p] = []
                    found.append((offset, key, value))
                placed.append(positions)
            for p, part in rows.items():
                execute_rows(conn, f"INSERT INTO {self._tables[p]}", part)
            execute_rows(
                conn,
                "INSERT INTO partitions",
                [(p, next_offset[p]) for p in sorted(rows)],
                "ON CONFLICT (partition) DO UPDATE SET next_offset = excluded.next_offset",
            )
        return placed

    def trim(self, partition: int, before: int) -> int:
        self.check_partition(partition)
        with self._file.write() as conn:
            cursor = conn.execute(
                f"DELETE FROM {self._tables[partition]} WHERE offset < ?", (before,)
            )
            return cursor.rowcount

    def erase_user(self, user_id: str) -> int:
        # The user's offsets are found by a scan of its partition on a reader, beside the
        # appends; only the delete (by primary key) holds the write lock. A per-record index on
        # the key would make erasure instant, but it costs about half the append throughput:
        # each batch would dirty ~one random index page per record.
        p = self.partition_for(user_id)
        table = self._tables[p]
        with self._file.snapshot() as conn:
            (scanned_to,) = conn.execute(
                "SELECT next_offset FROM partitions WHERE partition = ?", (p,)
            ).fetchone()
            found = conn.execute(
                f"SELECT offset FROM {table} WHERE offset < ? AND key = ?",
                (scanned_to, user_id),
            ).fetchall()
        with self._file.write() as conn:
            conn.executemany(f"DELETE FROM {table} WHERE offset = ?", found)
            conn.execute(  # what was appended during the scan
                f"DELETE FROM {table} WHERE offset >= ? AND key = ?", (scanned_to, user_id)
            )
            (end,) = conn.execute(
                "SELECT next_offset FROM partitions WHERE partition = ?", (p,)
            ).fetchone()
        self._file.scrub()
        return int(end)

    # --- reading ---------------------------------------------------------------------
    def read(self, partition: int, offset: int, max_records: int) -> list[LogRecord]:
        self.check_partition(partition)
        if max_records < 1:
            return []
        with self._file.read() as conn:
            rows = conn.execute(self._reads[partition], (offset, max_records)).fetchall()
        return [LogRecord(partition, off, key, bytes(value)) for off, key, value in rows]

    def change_token(self) -> tuple[int, int]:
        """Changes whenever anyone commits to the log file (see ``SqliteFile.change_token``)."""
        return self._file.change_token()

    def end_offsets(self) -> dict[int, int]:
        with self._file.read() as conn:
            (ends,) = conn.execute(SELECT_ENDS).fetchone()
        return {int(p): int(end) for p, end in orjson.loads(ends).items()}

    def total_lag(self, group: str) -> int:
        with self._file.read() as conn:
            (lag,) = conn.execute(SELECT_TOTAL_LAG, (group,)).fetchone()
        return int(lag)

    def committed(self, group: str) -> dict[int, int]:
        with self._file.read() as conn:
            rows = conn.execute(
                "SELECT partition, next_offset FROM group_offsets WHERE grp = ?", (group,)
            ).fetchall()
        done = dict.fromkeys(range(self.num_partitions), 0)
        done.update((int(p), int(off)) for p, off in rows)
        return done

    # --- groups ----------------------------------------------------------------------
    def consumer(self, group: str, member_id: str | None = None) -> SqliteConsumer:
        if member_id is None:
            member_id = new_member_id()
        member = SqliteConsumer(self, group, member_id)
        self._consumers.add(member)
        return member

    # --- lifecycle -------------------------------------------------------------------
    def ping(self) -> None:
        with self._file.read() as conn:
            conn.execute("SELECT 1").fetchall()

    def close(self) -> None:
        if self._file.closed:
            return
        for member in list(self._consumers):
            member.close()
        self._file.close()

    def __repr__(self) -> str:
        return f"SqliteEventLog(path={str(self.path)!r}, partitions={self.num_partitions})"
