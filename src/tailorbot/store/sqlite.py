"""The embedded online store: one SQLite file (WAL mode) shared by the API and its workers.

Feature records, profiles, decisions, counters and erasure tombstones each have a table.
States and profiles are stored as orjson; reads of records and profiles go through an
in-process cache that empties itself when another process commits to the file, so a hot
``get`` costs microseconds and is never stale. Every read decodes a fresh object: callers
may mutate what they get.

URL: ``sqlite:///relative/store.db`` or ``sqlite:////absolute/store.db`` (parent directories
are created), with optional query options:

* ``synchronous`` — ``normal`` (default: a write survives a crash of the process) or ``full``.
* ``busy_timeout`` — seconds to wait while another process writes (default 5).
* ``read_cache`` — most records and profiles kept in memory (default 100000; 0 turns it off).

>>> import tempfile
>>> store = SqliteOnlineStore.from_url(f"sqlite:///{tempfile.mkdtemp()}/store.db")
>>> store.put_many([FeatureRecord("u1", {"messages": 3}, partition=2, offset=7,
...                               event_time=1.0, updated_at=2.0)])
>>> store.get("u1").state
{'messages': 3}
>>> store.increment("bandit", {"arm-a": 1.0}); store.counters("bandit")
{'arm-a': 1.0}
>>> store.close()
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import orjson

from tailorbot._sqlite import (
    SqliteFile,
    VersionedCache,
    merge_options,
    parse_sqlite_url,
    positive_float,
)
from tailorbot.store.base import FeatureRecord, OnlineStore, StoreError, user_digest

SCHEMA = """
CREATE TABLE IF NOT EXISTS feature_records (
    user_id TEXT PRIMARY KEY, state BLOB NOT NULL, partition INTEGER NOT NULL,
    offset INTEGER NOT NULL, event_time REAL NOT NULL, updated_at REAL NOT NULL,
    version INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS profiles (
    user_id TEXT PRIMARY KEY, profile BLOB NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS decisions (
    decision_id TEXT PRIMARY KEY, user_id TEXT NOT NULL, record BLOB NOT NULL, feedback BLOB,
    created_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS decisions_by_user ON decisions (user_id);
CREATE TABLE IF NOT EXISTS counters (
    namespace TEXT NOT NULL, key TEXT NOT NULL, value REAL NOT NULL,
    PRIMARY KEY (namespace, key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS erasures (
    digest TEXT PRIMARY KEY, partition INTEGER NOT NULL, watermark INTEGER NOT NULL
) WITHOUT ROWID;
"""

# Fenced per user, and never below an erasure watermark: a worker that read the user's
# events before the erasure cannot bring the user back.
PUT_RECORD = """
INSERT INTO feature_records (user_id, state, partition, offset, event_time, updated_at, version)
SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7
WHERE NOT EXISTS (
    SELECT 1 FROM erasures WHERE digest = ?8 AND partition = ?3 AND watermark > ?4
)
ON CONFLICT (user_id) DO UPDATE SET
    state = excluded.state, partition = excluded.partition, offset = excluded.offset,
    event_time = excluded.event_time, updated_at = excluded.updated_at, version = excluded.version
WHERE excluded.offset > feature_records.offset
"""
SELECT_RECORDS = (
    "SELECT user_id, state, partition, offset, event_time, updated_at, version "
    "FROM feature_records WHERE user_id IN ({marks})"
)
SELECT_PROFILES = "SELECT user_id, profile FROM profiles WHERE user_id IN ({marks})"
RECORD, PROFILE = "record", "profile"  # the two kinds of cached rows
MAX_MARKS = 500  # ids per IN (...) query
URL_OPTIONS: dict[str, Callable[[str], Any]] = {
    "synchronous": str, "busy_timeout": positive_float, "read_cache": int
}
_UNCACHED = object()


class SqliteOnlineStore(OnlineStore):
    """Per-user feature records and shared decision state in one SQLite file."""

    def __init__(
        self,
        path: str | Path,
        synchronous: str = "normal",
        busy_timeout: float = 5.0,
        read_cache: int = 100_000,
    ) -> None:
        if read_cache < 0:
            raise ValueError(f"read_cache must be >= 0 (0 turns the cache off), got {read_cache}")
        self.path = path
        self.synchronous = synchronous
        self.busy_timeout = busy_timeout
        self.read_cache = read_cache
        self._file = SqliteFile(Path(path), SCHEMA, StoreError, synchronous, busy_timeout)
        self._cache = VersionedCache(self._file, read_cache)

    @classmethod
    def from_url(cls, url: str, **options: Any) -> SqliteOnlineStore:
        """Open ``sqlite:///path?option=value``; keyword ``options`` override the URL's."""
        path, url_options = parse_sqlite_url(url)
        return cls(path, **merge_options(url_options, options, URL_OPTIONS))

    # --- cached reads ----------------------------------------------------------------
    def _rows(self, kind: str, user_ids: Iterable[str]) -> dict[str, tuple[Any, ...]]:
        """Rows of ``kind`` by user id, from the cache where it can answer (absent: omitted)."""
        generation = self._cache.generation()  # before reading: rows are at least this new
        found: dict[str, tuple[Any, ...]] = {}
        missing: list[str] = []
        for user_id in dict.fromkeys(user_ids):
            row: Any = _UNCACHED
            if generation is not None:
                row = self._cache.lookup((kind, user_id), _UNCACHED)
            if row is _UNCACHED:
                missing.append(user_id)
            elif row is not None:
                found[user_id] = row
        if not missing:
            return found
        query = SELECT_RECORDS if kind == RECORD else SELECT_PROFILES
        read: dict[str, tuple[Any, ...]] = {}
        with self._file.read() as conn:
            for start in range(0, len(missing), MAX_MARKS):
                chunk = missing[start : start + MAX_MARKS]
                sql = query.format(marks=",".join("?" * len(chunk)))
                read.update((row[0], row) for row in conn.execute(sql, chunk).fetchall())
        if generation is not None:
            self._cache.fill(generation, {(kind, u): read.get(u) for u in missing})
        found.update(read)
        return found

    # --- feature records -------------------------------------------------------------
    def get(self, user_id: str) -> FeatureRecord | None:
        row = self._rows(RECORD, (user_id,)).get(user_id)
        return None if row is None else _record(row)

    def get_many(self, user_ids: Iterable[str]) -> dict[str, FeatureRecord]:
        return {u: _record(row) for u, row in self._rows(RECORD, user_ids).items()}

    def put_many(self, records: Sequence[FeatureRecord]) -> None:
        if not records:
            return
        rows = [
            (
                r.user_id, _dumps(r.state), r.partition, r.offset, r.event_time, r.updated_at,
                r.version, user_digest(r.user_id),
            )
            for r in records
        ]
        written = [(RECORD, r.user_id) for r in records]
        with self._file.write(then=lambda: self._cache.evict(written)) as conn:
            conn.executemany(PUT_RECORD, rows)

    # --- profiles --------------------------------------------------------------------
    def get_profile(self, user_id: str) -> dict[str, Any] | None:
        row = self._rows(PROFILE, (user_id,)).get(user_id)
        return None if row is None else orjson.loads(row[1])

    def get_profiles(self, user_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        return {u: orjson.loads(row[1]) for u, row in self._rows(PROFILE, user_ids).items()}

    def put_profile(self, user_id: str, profile: Mapping[str, Any]) -> None:
        blob = _dumps(profile)
        with self._file.write(then=lambda: self._cache.evict([(PROFILE, user_id)])) as conn:
            conn.execute(
                "INSERT INTO profiles VALUES (?, ?) "
                "ON CONFLICT (user_id) DO UPDATE SET profile = excluded.profile",
                (user_id, blob),
            )

    # --- decisions -------------------------------------------------------------------
    def put_decision(self, decision_id: str, user_id: str, record: Mapping[str, Any]) -> None:
        with self._file.write() as conn:
            conn.execute(
                "INSERT INTO decisions VALUES (?, ?, ?, NULL, ?) ON CONFLICT (decision_id) "
                "DO UPDATE SET user_id = excluded.user_id, record = excluded.record",
                (decision_id, user_id, _dumps(record), time.time()),
            )

    def get_decision(self, decision_id: str) -> dict[str, Any] | None:
        """The decision as put; once feedback was recorded, also under ``"feedback"``."""
        with self._file.read() as conn:
            row = conn.execute(
                "SELECT record, feedback FROM decisions WHERE decision_id = ?", (decision_id,)
            ).fetchall()
        if not row:
            return None
        record, feedback = row[0]
        decision: dict[str, Any] = orjson.loads(record)
        if feedback is not None:
            decision["feedback"] = orjson.loads(feedback)
        return decision

    def record_feedback(self, decision_id: str, feedback: Mapping[str, Any]) -> bool:
        """True the first time; False when given already or the decision is unknown."""
        with self._file.write() as conn:
            cursor = conn.execute(
                "UPDATE decisions SET feedback = ? WHERE decision_id = ? AND feedback IS NULL",
                (_dumps(feedback), decision_id),
            )
            return cursor.rowcount == 1

    # --- shared counters -------------------------------------------------------------
    def increment(self, namespace: str, deltas: Mapping[str, float]) -> None:
        rows = [(namespace, key, float(delta)) for key, delta in deltas.items()]
        bad = sorted(key for _, key, delta in rows if not math.isfinite(delta))
        if bad:
            raise ValueError(f"counter deltas must be finite numbers; not so for {bad}")
        if not rows:
            return
        with self._file.write() as conn:
            conn.executemany(
                "INSERT INTO counters VALUES (?, ?, ?) "
                "ON CONFLICT (namespace, key) DO UPDATE SET value = value + excluded.value",
                rows,
            )

    def counters(self, namespace: str) -> dict[str, float]:
        with self._file.read() as conn:
            rows = conn.execute(
                "SELECT key, value FROM counters WHERE namespace = ?", (namespace,)
            ).fetchall()
        return {key: float(value) for key, value in rows}

    # --- privacy ---------------------------------------------------------------------
    def erase_user(self, user_id: str, partition: int, watermark: int) -> None:
        forget = [(RECORD, user_id), (PROFILE, user_id)]
        with self._file.write(then=lambda: self._cache.evict(forget)) as conn:
            for table in ("feature_records", "profiles", "decisions"):
                conn.execute(f"DELETE FROM {table} WHERE user_id = ?", (user_id,))
            conn.execute(
                "INSERT INTO erasures VALUES (?, ?, ?) ON CONFLICT (digest) DO UPDATE SET "
                "partition = excluded.partition, watermark = max(watermark, excluded.watermark)",
                (user_digest(user_id), partition, watermark),
            )
        self._file.scrub()

    def erasure_watermarks(self, user_ids: Iterable[str]) -> dict[str, int]:
        by_digest = {user_digest(u): u for u in user_ids}
        digests = list(by_digest)
        out: dict[str, int] = {}
        with self._file.read() as conn:
            for start in range(0, len(digests), MAX_MARKS):
                chunk = digests[start : start + MAX_MARKS]
                marks = ",".join("?" * len(chunk))
                rows = conn.execute(
                    f"SELECT digest, watermark FROM erasures WHERE digest IN ({marks})", chunk
                ).fetchall()
                out.update((by_digest[digest], int(mark)) for digest, mark in rows)
        return out

    # --- lifecycle -------------------------------------------------------------------
    def ping(self) -> None:
        with self._file.read() as conn:
            conn.execute("SELECT 1").fetchall()

    def close(self) -> None:
        self._cache.clear()
        self._file.close()

    def __repr__(self) -> str:
        return f"SqliteOnlineStore(path={str(self.path)!r})"


def _record(row: tuple[Any, ...]) -> FeatureRecord:
    user_id, state, partition, offset, event_time, updated_at, version = row
    return FeatureRecord(
        user_id, orjson.loads(state), partition, offset, event_time, updated_at, version
    )


def _dumps(value: Any) -> bytes:
    if isinstance(value, Mapping) and not isinstance(value, dict):
        value = dict(value)
    try:
        return orjson.dumps(value)
    except TypeError as exc:
        raise TypeError(f"store values must be JSON-serialisable: {exc}") from exc
