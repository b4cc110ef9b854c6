"""The embedded online stores: one SQLite file (WAL mode) shared by the API and its workers.

Feature records, profiles, decisions, counters, vector counters (and their change stamps)
and erasure watermarks each have a table of one file; each concern is a small class over the
one shared :class:`SqliteFile`, and :func:`open_stores` opens the file once for all four
(decisions and counters, which a feedback writes in one transaction, live in
:mod:`tailorbot.store.sqlite_shared`). States are stored as :mod:`tailorbot.store.state_blob`
writes them (orjson, the dedupe ids apart), profiles as orjson; reads of records and
profiles go through an in-process cache per concern that empties itself when another
process commits to the file, so a hot ``get`` costs microseconds and is never stale. Every
read decodes a fresh object: callers may mutate what they get. Erasing deletes with
``secure_delete`` and then scrubs the WAL, so no byte of an erased row stays in any file.

URL: ``sqlite:///relative/store.db`` or ``sqlite:////absolute/store.db`` (parent directories
are created), with optional query options:

* ``synchronous`` — ``normal`` (default: a write survives a crash of the process) or ``full``.
* ``busy_timeout`` — seconds to wait while another process writes (default 5).
* ``read_cache`` — most records and profiles kept in memory per concern (default 100000;
  0 turns it off).

The keyword ``read_cache_bytes`` (the ``store_read_cache_bytes`` setting) bounds the same
caches in bytes, each (default 64 MB; least recently used out first): profiles and states
vary in size by orders of magnitude, so a count alone bounds no memory.

>>> import tempfile
>>> stores = open_stores(f"sqlite:///{tempfile.mkdtemp()}/store.db")
>>> stores.features.put_many([FeatureRecord("u1", {"messages": 3}, partition=2, offset=7,
...                                         event_time=1.0, updated_at=2.0)])  # who was written
{'u1'}
>>> stores.features.get("u1").state
{'messages': 3}
>>> stores.features.erase("u1", partition=2, watermark=8); stores.features.get("u1") is None
True
>>> stores.counters.increment("bandit", {"arm-a": 1.0}); stores.counters.counters("bandit")
{'arm-a': 1.0}
>>> stores.close()
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import orjson

from tailorbot._backends import positive_float, typed_options
from tailorbot._sqlite import SqliteFile, VersionedCache, execute_rows, parse_sqlite_url
from tailorbot.compiled import slotted_builder
from tailorbot.config import READ_CACHE_BYTES
from tailorbot.events.erasure import user_digest
from tailorbot.store.base import (
    Erasure,
    EventIncrement,
    FeatureRecord,
    FeatureStore,
    ProfileAndRecord,
    ProfileStore,
    StoreError,
    Stores,
)
from tailorbot.store.sqlite_dedupe import SELECT_RECORDS, record_of, records_with_ids, write_ids
from tailorbot.store.sqlite_shared import (
    SqliteConcern,
    SqliteCounterStore,
    SqliteDecisionStore,
    add_counter_rows,
    counter_rows,
    dumps,
    select_in,
)
from tailorbot.store.state_blob import (
    decode_served,
    encode_state,
    ids_apart,
    keeps_apart,
)

SCHEMA = """
CREATE TABLE IF NOT EXISTS feature_records (
    user_id TEXT PRIMARY KEY, state BLOB NOT NULL, partition INTEGER NOT NULL,
    offset INTEGER NOT NULL, event_time REAL NOT NULL, updated_at REAL NOT NULL,
    version INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS dedupe_ids (
    user_id TEXT NOT NULL, ts REAL NOT NULL, event_id TEXT NOT NULL,
    PRIMARY KEY (user_id, ts, event_id)
) WITHOUT ROWID;
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
CREATE TABLE IF NOT EXISTS counter_vectors (
    namespace TEXT NOT NULL, key TEXT NOT NULL, value BLOB NOT NULL,
    PRIMARY KEY (namespace, key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS counter_stamps (
    namespace TEXT PRIMARY KEY, stamp INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS erasures (
    digest TEXT PRIMARY KEY, partition INTEGER NOT NULL, watermark INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS erasure_times (
    digest TEXT PRIMARY KEY, erased_at REAL NOT NULL
) WITHOUT ROWID;
"""

# Fenced per user, and never below an erasure watermark: a worker that read the user's
# events before the erasure cannot bring the user back. Many records in one statement (rows
# of 8 values, the 8th the user's erasure digest, as a VALUES list: _sqlite.execute_rows);
# returns the users whose record it wrote.
PUT_HEAD = (
    "INSERT INTO feature_records (user_id, state, partition, offset, event_time, updated_at, "
    "version) SELECT column1, column2, column3, column4, column5, column6, column7 FROM ("
)
PUT_TAIL = """) AS v
WHERE NOT EXISTS (
    SELECT 1 FROM erasures e
    WHERE e.digest = v.column8 AND e.partition = v.column3 AND e.watermark > v.column4
)
ON CONFLICT (user_id) DO UPDATE SET
    state = excluded.state, partition = excluded.partition, offset = excluded.offset,
    event_time = excluded.event_time, updated_at = excluded.updated_at, version = excluded.version
WHERE excluded.offset > feature_records.offset
RETURNING user_id
"""
SELECT_POSITIONS = (
    "SELECT user_id, partition, offset FROM feature_records WHERE user_id IN ({marks})"
)
RAISE_WATERMARK = (
    "INSERT INTO erasures VALUES (?, ?, ?) ON CONFLICT (digest) DO UPDATE SET "
    "partition = excluded.partition, watermark = max(watermark, excluded.watermark)"
)
RAISE_ERASURE_TIME = (
    "INSERT INTO erasure_times VALUES (?, ?) ON CONFLICT (digest) DO UPDATE SET "
    "erased_at = max(erased_at, excluded.erased_at)"
)
SELECT_PROFILES = "SELECT user_id, profile FROM profiles WHERE user_id IN ({marks})"
SELECT_USER = (  # a decision's one read: (None, ...) when the user has neither row
    "SELECT p.profile, r.state, r.partition, r.offset, r.event_time, r.updated_at, r.version "
    "FROM (SELECT ? AS user_id) AS u "
    "LEFT JOIN profiles AS p ON p.user_id = u.user_id "
    "LEFT JOIN feature_records AS r ON r.user_id = u.user_id"
)
SELECT_ERASURES = (
    "SELECT e.digest, e.watermark, coalesce(t.erased_at, 0) FROM erasures e "
    "LEFT JOIN erasure_times t ON t.digest = e.digest WHERE e.digest IN ({marks})"
)
URL_OPTIONS: dict[str, Callable[[str], Any]] = {
    "synchronous": str,
    "busy_timeout": positive_float,
    "read_cache": int,
}
_UNCACHED = object()


def open_stores(url: str, read_cache_bytes: int = READ_CACHE_BYTES, **options: Any) -> Stores:
    """Open ``sqlite:///path?option=value`` once for all four stores; keyword ``options``
    (``synchronous``, ``busy_timeout``, ``read_cache``) override the URL's."""
    path, url_options = parse_sqlite_url(url)
    typed = typed_options(url_options, options, URL_OPTIONS, "sqlite")
    read_cache = typed.pop("read_cache", 100_000)
    for name, bound in (("read_cache", read_cache), ("read_cache_bytes", read_cache_bytes)):
        if bound < 0:
            raise ValueError(f"{name} must be >= 0 (0 turns the cache off), got {bound}")
    file = open_file(path, **typed)
    return Stores(
        features=SqliteFeatureStore(file, read_cache, read_cache_bytes),
        profiles=SqliteProfileStore(file, read_cache, read_cache_bytes),
        decisions=SqliteDecisionStore(file),
        counters=SqliteCounterStore(file),
        closer=file.close,
        user_reader=SqliteUserReader(file),
    )


def open_file(
    path: str | Path, synchronous: str = "normal", busy_timeout: float = 5.0
) -> SqliteFile:
    """The store's SQLite file (created with its tables when new), for the classes below."""
    return SqliteFile(Path(path), SCHEMA, StoreError, synchronous, busy_timeout)


class _CachedRows:
    """Rows of one table by user id, read through a :class:`VersionedCache` (absent rows are
    cached too, as None). Rows are raw tuples: callers decode a fresh object per read."""

    def __init__(self, file: SqliteFile, query: str, max_entries: int, max_bytes: int) -> None:
        self.file = file
        self.query = query
        self.cache = VersionedCache(file, max_entries, max_bytes)

    def rows(self, user_ids: Iterable[str]) -> dict[str, tuple[Any, ...]]:
        generation = self.cache.generation()  # before reading: rows are at least this new
        found: dict[str, tuple[Any, ...]] = {}
        missing: list[str] = []
        for user_id in dict.fromkeys(user_ids):
            row: Any = _UNCACHED if generation is None else self.cache.lookup(user_id, _UNCACHED)
            if row is _UNCACHED:
                missing.append(user_id)
            elif row is not None:
                found[user_id] = row
        if not missing:
            return found
        read = {row[0]: row for row in _select_in(self.file, self.query, missing)}
        if generation is not None:
            self.cache.fill(generation, {u: read.get(u) for u in missing})
        found.update(read)
        return found


class SqliteUserReader:
    """A decision's reads of one user, the profile and the feature record, in one statement
    and past the read caches (see :meth:`Stores.profile_and_record`). Under load the caches
    rarely hold a decision's user: the worker process applies every decision's message event,
    and each of its commits empties them. Even when both rows are cached, the two cache checks
    (a ``PRAGMA data_version`` each) cost more than this read: about 8 µs against 13 for two
    hits and 38 for two misses, in a loop."""

    def __init__(self, file: SqliteFile) -> None:
        self.file = file

    def __call__(self, user_id: str) -> ProfileAndRecord:
        with self.file.read() as conn:
            profile, blob, partition, offset, event_time, updated_at, version = conn.execute(
                SELECT_USER, (user_id,)
            ).fetchone()
        return (
            None if profile is None else orjson.loads(profile),
            None
            if blob is None
            else _record_builder()(
                user_id,
                decode_served(blob),
                partition,
                offset,
                event_time,
                updated_at,
                version,
                None,
            ),
        )


class SqliteFeatureStore(SqliteConcern, FeatureStore):
    """Feature records (fenced writes) and erasure watermarks in the shared file."""

    def __init__(
        self, file: SqliteFile, read_cache: int = 100_000, read_cache_bytes: int = READ_CACHE_BYTES
    ) -> None:
        self.file = file
        self.read_cache = read_cache
        self.read_cache_bytes = read_cache_bytes
        self._rows = _CachedRows(file, SELECT_RECORDS, read_cache, read_cache_bytes)

    def get(self, user_id: str) -> FeatureRecord | None:
        return self.get_many((user_id,)).get(user_id)

    def get_many(self, user_ids: Iterable[str]) -> dict[str, FeatureRecord]:
        records: dict[str, FeatureRecord] = {}
        apart: list[str] = []  # read again with their ids (the cache holds the rows only)
        for user, row in self._rows.rows(user_ids).items():
            if ids_apart(row[1]):
                apart.append(user)
            else:
                records[user] = record_of(row)
        if apart:
            records.update(records_with_ids(self.file, apart))
        return records

    def put_many(
        self,
        records: Sequence[FeatureRecord],
        increments: Mapping[str, Sequence[EventIncrement]] | None = None,
    ) -> set[str]:
        if not records:
            return set()
        increments = increments or {}
        rows, ids = zip(*(_record_row(r) for r in records), strict=True)
        written = [r.user_id for r in records]
        # One transaction for the records and their counters, in a handful of statements:
        # where the counted users' records stood, the fenced writes (which say what they
        # wrote) and their dedupe ids, then the counters of the events after what the store
        # held. A user given twice is written in turn, as if in two calls.
        with self.file.write(then=lambda: self._rows.cache.evict(written)) as conn:
            held = {
                user: (partition, offset)
                for user, partition, offset in select_in(
                    conn, SELECT_POSITIONS, [u for u in dict.fromkeys(written) if increments.get(u)]
                )
            }
            put: set[str] = set()
            counters: list[tuple[str, str, float]] = []
            for turn in _turns(records):
                done = {
                    u for (u,) in execute_rows(conn, PUT_HEAD, [rows[i] for i in turn], PUT_TAIL)
                }
                put_now = [i for i in turn if records[i].user_id in done]
                write_ids([(records[i], ids[i]) for i in put_now], conn)
                for record in (records[i] for i in put_now):
                    if increments.get(record.user_id):
                        counters += _counter_rows(record, increments, held)
                        held[record.user_id] = (record.partition, record.offset)
                put |= done
            add_counter_rows(conn, counters)
        return put

    def erase(
        self, user_id: str, partition: int, watermark: int, erased_at: float | None = None
    ) -> None:
        digest = user_digest(user_id)
        at = time.time() if erased_at is None else erased_at
        with self.file.write(then=lambda: self._rows.cache.evict([user_id])) as conn:
            conn.execute("DELETE FROM feature_records WHERE user_id = ?", (user_id,))
            conn.execute("DELETE FROM dedupe_ids WHERE user_id = ?", (user_id,))
            conn.execute(RAISE_WATERMARK, (digest, partition, watermark))
            conn.execute(RAISE_ERASURE_TIME, (digest, at))
        self.file.scrub()

    def erasures(self, user_ids: Iterable[str]) -> dict[str, Erasure]:
        by_digest = {user_digest(u): u for u in user_ids}
        rows = _select_in(self.file, SELECT_ERASURES, list(by_digest))
        return {by_digest[digest]: Erasure(int(mark), float(at)) for digest, mark, at in rows}

    def close(self) -> None:
        self._rows.cache.clear()

    def __repr__(self) -> str:
        return f"SqliteFeatureStore(path={str(self.file.path)!r})"


class SqliteProfileStore(SqliteConcern, ProfileStore):
    """User profiles (JSON) in the shared file."""

    def __init__(
        self, file: SqliteFile, read_cache: int = 100_000, read_cache_bytes: int = READ_CACHE_BYTES
    ) -> None:
        self.file = file
        self.read_cache = read_cache
        self.read_cache_bytes = read_cache_bytes
        self._rows = _CachedRows(file, SELECT_PROFILES, read_cache, read_cache_bytes)

    def get(self, user_id: str) -> dict[str, Any] | None:
        row = self._rows.rows((user_id,)).get(user_id)
        return None if row is None else orjson.loads(row[1])

    def get_many(self, user_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        return {u: orjson.loads(row[1]) for u, row in self._rows.rows(user_ids).items()}

    def put(self, user_id: str, profile: Mapping[str, Any]) -> None:
        blob = dumps(profile)
        with self.file.write(then=lambda: self._rows.cache.evict([user_id])) as conn:
            conn.execute(
                "INSERT INTO profiles VALUES (?, ?) "
                "ON CONFLICT (user_id) DO UPDATE SET profile = excluded.profile",
                (user_id, blob),
            )

    def delete(self, user_id: str) -> None:
        with self.file.write(then=lambda: self._rows.cache.evict([user_id])) as conn:
            conn.execute("DELETE FROM profiles WHERE user_id = ?", (user_id,))
        self.file.scrub()

    def close(self) -> None:
        self._rows.cache.clear()

    def __repr__(self) -> str:
        return f"SqliteProfileStore(path={str(self.file.path)!r})"


def _record_row(r: FeatureRecord) -> tuple[tuple[Any, ...], dict[str, float] | None]:
    """The row of ``r``, and the dedupe ids it keeps apart (None: in its blob, or none)."""
    blob, ids = encode_state(r.state, keeps_apart(r.state, r.dedupe))
    row = (
        r.user_id,
        blob,
        r.partition,
        r.offset,
        r.event_time,
        r.updated_at,
        r.version,
        user_digest(r.user_id),
    )
    return row, ids


def _counter_rows(
    record: FeatureRecord,
    increments: Mapping[str, Sequence[EventIncrement]],
    held: Mapping[str, tuple[int, int]],
) -> list[tuple[str, str, float]]:
    """The counter rows of a record just written: its events after the offset the store held
    (``held``: the user's partition and offset before it). A record the fence skipped adds
    nothing: its events were counted, or never count."""
    before = held.get(record.user_id)
    seen = before[1] if before is not None and before[0] == record.partition else -1
    return [
        row
        for offset, by_namespace in increments[record.user_id]
        if offset > seen
        for namespace, deltas in by_namespace.items()
        for row in counter_rows(namespace, deltas)
    ]


def _turns(records: Sequence[FeatureRecord]) -> list[list[int]]:
    """The indexes of ``records`` in turns where each user is once: the n-th turn holds
    each user's n-th record (one turn, unless a user is given twice)."""
    turns: list[list[int]] = []
    given: dict[str, int] = {}
    for i, record in enumerate(records):
        n = given[record.user_id] = given.get(record.user_id, -1) + 1
        if n == len(turns):
            turns.append([])
        turns[n].append(i)
    return turns


def _select_in(file: SqliteFile, query: str, keys: list[str]) -> list[tuple[Any, ...]]:
    """Rows of ``query`` (with ``IN ({marks})``) for ``keys``, in chunks of MAX_MARKS."""
    with file.read() as conn:
        return select_in(conn, query, keys)


@functools.cache
def _record_builder() -> Callable[..., FeatureRecord]:
    """What builds a decision's record, every field given (``dedupe`` None): its slots set
    without the dataclass's ``__init__`` (compiled.slotted_builder)."""
    return slotted_builder(FeatureRecord)
