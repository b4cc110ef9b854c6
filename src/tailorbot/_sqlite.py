"""What the embedded (SQLite) log and store share: URL parsing and one file's connections.

A :class:`SqliteFile` serves many threads and processes at once. Every thread reads on a
connection of its own (WAL lets readers run beside the writer); this process writes through
one writer connection behind a lock, so threads queue on the lock and only *other
processes* wait on SQLite's busy timeout. ``secure_delete`` is on for every connection, and
:meth:`SqliteFile.scrub` checkpoints and truncates the WAL, so that deleted rows leave no
bytes behind in any file (erasure).

>>> import tempfile
>>> path, options = parse_sqlite_url(f"sqlite:///{tempfile.mkdtemp()}/x.db?synchronous=full")
>>> path.name, options
('x.db', {'synchronous': 'full'})
"""

from __future__ import annotations

import sqlite3
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from tailorbot._backends import positive_float
from tailorbot.config import READ_CACHE_BYTES

SYNCHRONOUS_LEVELS = ("off", "normal", "full", "extra")
# An ordered dict's node (links, hash, key and value pointers) and the (value, size) tuple.
ENTRY_OVERHEAD_BYTES = 150


def parse_sqlite_url(url: str) -> tuple[Path, dict[str, str]]:
    """``sqlite:///rel.db`` (relative) or ``sqlite:////abs/x.db`` -> path and query options."""
    scheme, sep, rest = url.partition("://")
    if not sep or scheme.lower() != "sqlite":
        raise ValueError(f"not a sqlite URL: {url!r} (expected sqlite:///path/to/file.db)")
    location, _, query = rest.partition("?")
    if not location.startswith("/") or location == "/":
        raise ValueError(f"sqlite URL {url!r} names no file (expected sqlite:///path/to/file.db)")
    path = location[1:]  # sqlite:///rel.db -> rel.db, sqlite:////abs.db -> /abs.db
    if path == ":memory:":
        raise ValueError("an in-memory sqlite database cannot be shared by threads and processes")
    options = dict(parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query)))
    return Path(path), options


MAX_ROWS_PER_STATEMENT = 512
BUSY_SLICE_MS = 2  # the writer's SQLite busy timeout; _begin repeats it up to busy_timeout


def execute_rows(
    conn: sqlite3.Connection, head: str, rows: Sequence[Sequence[Any]], tail: str = ""
) -> list[Any]:
    """Run ``{head} VALUES (?, ...), (?, ...) {tail}`` for ``rows`` in few statements.

    ``executemany`` steps SQLite once per row, and the sqlite3 module releases the
    interpreter lock around every step; in a busy process (an API server's threads) taking it
    back can wait up to the switch interval (5 ms) each time, so a write of 100 rows could
    hold the file's write lock for 100 such waits. A multi-row statement is one step. Rows go
    in chunks whose sizes are powers of two (at most :data:`MAX_ROWS_PER_STATEMENT`): a few
    statements per call, and a few distinct SQL texts, which stay prepared in the cache.
    Returns the rows the statements return (``RETURNING``), in order.

    >>> conn = sqlite3.connect(":memory:")
    >>> _ = conn.execute("CREATE TABLE t (a, b)")
    >>> execute_rows(conn, "INSERT INTO t", [(i, i * i) for i in range(1000)])
    []
    >>> conn.execute("SELECT count(*), sum(b) FROM t").fetchone()
    (1000, 332833500)
    """
    returned: list[Any] = []
    if not rows:
        return returned
    width = len(rows[0])
    row_marks = "(" + ",".join("?" * width) + ")"
    start, left = 0, len(rows)
    while left:
        size = min(MAX_ROWS_PER_STATEMENT, 1 << (left.bit_length() - 1))
        sql = f"{head} VALUES {','.join([row_marks] * size)} {tail}"
        params = [value for row in rows[start : start + size] for value in row]
        returned += conn.execute(sql, params).fetchall()
        start += size
        left -= size
    return returned


def synchronous_level(text: str) -> str:
    level = text.strip().lower()
    if level not in SYNCHRONOUS_LEVELS:
        raise ValueError(f"expected one of {list(SYNCHRONOUS_LEVELS)}")
    return level


class _SqliteErrors:
    """A context manager that raises an SQLite error from inside as the file's
    :attr:`SqliteFile.error`. A class rather than a generator: a decision enters one on
    every read of its user, and ``contextlib.contextmanager``'s generators took about a
    tenth of that read's instructions. One per ``with``: a file holding one of its own would
    make a reference cycle, and a file dropped unclosed would keep its connections open
    until the next full collection."""

    __slots__ = ("file",)

    def __init__(self, file: SqliteFile) -> None:
        self.file = file

    def __exit__(self, kind: object, exc: BaseException | None, traceback: object) -> None:
        if isinstance(exc, sqlite3.Error):
            raise self.file.error(f"sqlite {self.file.path}: {exc}") from exc


class _Translated(_SqliteErrors):
    __slots__ = ()

    def __enter__(self) -> None:
        return None


class _Reading(_SqliteErrors):
    """:meth:`SqliteFile.read`: this thread's connection."""

    __slots__ = ()

    def __enter__(self) -> sqlite3.Connection:
        return self.file._this_threads()


class SqliteFile:
    """Connections to one SQLite database file, safe to share across threads.

    ``error`` is the exception type (the backend's ``LogError``/``StoreError``) that any
    SQLite failure is turned into, so callers see one clear error type.
    """

    def __init__(
        self,
        path: Path,
        schema: str,
        error: type[Exception],
        synchronous: str = "normal",
        busy_timeout: float = 5.0,
    ) -> None:
        self.path = path
        self.schema = schema
        self.error = error
        self.synchronous = synchronous_level(synchronous)
        self.busy_timeout = positive_float(busy_timeout)
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._connections_lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._own_commits = 0  # write transactions this process committed (change_token)
        self._closed = False
        # The sqlite3 module binds only int, float, str and bytearray directly: a bytes value
        # (every log record and decision is one) went through its adapter lookup, a raised
        # and cleared AttributeError included, at each bind (some 3,000 instructions). An
        # adapter for exact bytes is found at once; bytes(b) is b itself, so nothing changes.
        sqlite3.register_adapter(bytes, bytes)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise error(f"cannot create the directory of {path}: {exc}") from exc
        with self._translated():
            self._writer = self._connect()
            if self._writer.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                self._writer.execute("PRAGMA journal_mode=WAL").fetchall()
            self._writer.executescript(schema)
            # From now on the writer waits for other processes' write locks in short slices
            # (_begin).
            self._writer.execute(f"PRAGMA busy_timeout = {BUSY_SLICE_MS}")

    @property
    def closed(self) -> bool:
        return self._closed

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(
            self.path, timeout=self.busy_timeout, isolation_level=None, check_same_thread=False
        )
        conn.execute(f"PRAGMA synchronous={self.synchronous}")
        conn.execute("PRAGMA secure_delete=ON")  # deleted bytes are zeroed, not just unlinked
        with self._connections_lock:
            self._connections.append(conn)
        return conn

    def _translated(self) -> _Translated:
        """A context manager that raises any SQLite error inside as :attr:`error`."""
        return _Translated(self)

    def _check_open(self) -> None:
        if self._closed:
            raise self.error(f"sqlite {self.path} is closed")

    def read(self) -> _Reading:
        """This thread's connection, in autocommit: each statement sees the latest commit
        (a context manager; SQLite's errors inside are raised as :attr:`error`).

        Fetch results completely (``fetchall``) so that no read snapshot stays open.
        """
        return _Reading(self)

    def _this_threads(self) -> sqlite3.Connection:
        """This thread's connection (made at its first read), once the file is checked open."""
        self._check_open()
        conn = getattr(self._local, "conn", None)
        if conn is None:
            with _Translated(self):
                conn = self._local.conn = self._connect()
        return conn

    @contextmanager
    def snapshot(self) -> Iterator[sqlite3.Connection]:
        """This thread's connection in one read transaction: every statement inside sees the
        same commit (reads that must agree with each other)."""
        with self.read() as conn:
            conn.execute("BEGIN")
            try:
                yield conn
            finally:
                conn.execute("COMMIT")

    @contextmanager
    def write(self, then: Callable[[], None] | None = None) -> Iterator[sqlite3.Connection]:
        """One ``BEGIN IMMEDIATE`` transaction on the writer: committed, or rolled back on error.

        ``then`` runs after the commit while this process's writes are still held back (cache
        evictions: no reader can take a new cache generation before it is done).
        """
        with self._write_lock:
            self._check_open()
            with self._translated():
                self._begin()
                try:
                    yield self._writer
                    self._writer.execute("COMMIT")
                    self._own_commits += 1
                except BaseException:
                    if self._writer.in_transaction:  # SQLite may have rolled back already
                        self._writer.execute("ROLLBACK")
                    raise
            if then is not None:
                then()

    def data_version(self, wait: bool = True) -> int | None:
        """A number that changes when another process commits to the file, None when busy.

        Asked on the writer, which makes this process's own writes invisible to it: callers
        track those themselves. With ``wait=False`` it answers None instead of waiting for a
        write of this process in progress.
        """
        if not self._write_lock.acquire(blocking=wait):
            return None
        try:
            self._check_open()
            with self._translated():
                return int(self._writer.execute("PRAGMA data_version").fetchone()[0])
        finally:
            self._write_lock.release()

    def _begin(self) -> None:
        """``BEGIN IMMEDIATE``, retried while another process holds the write lock, for up to
        ``busy_timeout`` seconds.

        SQLite's busy handler sleeps 1, 2, 5, 10, 15, 20, 25... ms between attempts, so
        once a wait lasted a few attempts, the lock could stay free for up to 25-100 ms
        before the waiter looked again. The writer's busy timeout is a slice of
        :data:`BUSY_SLICE_MS` (SQLite then sleeps 1 ms, 1 ms, outside the interpreter lock)
        and the slices are repeated here: the lock changes hands within about a millisecond.
        """
        deadline = 0.0
        while True:
            try:
                self._writer.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as exc:
                if getattr(exc, "sqlite_errorcode", None) != sqlite3.SQLITE_BUSY:
                    raise
                now = time.monotonic()
                deadline = deadline or now + self.busy_timeout
                if now >= deadline:
                    raise

    def change_token(self) -> tuple[int, int]:
        """A value that changes whenever anyone commits to the file: this process (counted
        here) or another (``data_version``). Read it *before* reading the data it guards:
        an unchanged token later means nothing was committed since that read, so a reader
        that found nothing new need not look again (an idle consumer's cheap check)."""
        with self._write_lock:
            self._check_open()
            with self._translated():
                version = int(self._writer.execute("PRAGMA data_version").fetchone()[0])
            return version, self._own_commits

    def scrub(self) -> None:
        """Make deleted rows unrecoverable from every file of the database.

        ``secure_delete`` (on since the file's first write) zeroed them, and every freed cell
        or page before them, in their pages; this copies those pages into the main file and
        truncates the WAL, which still holds the old page images. Raises ``error`` when
        readers of other processes keep the WAL busy past the busy timeout.
        """
        deadline = time.monotonic() + self.busy_timeout
        while True:
            with self._write_lock, self._translated():
                self._check_open()
                busy = self._writer.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
            if not busy:
                return
            if time.monotonic() >= deadline:
                raise self.error(
                    f"sqlite {self.path}: the WAL stayed busy for {self.busy_timeout}s; deleted "
                    "data may remain in it until the next checkpoint (retry the erasure)"
                )
            time.sleep(0.01)

    def close(self) -> None:
        """Close every connection of every thread; later use raises ``error``."""
        with self._write_lock:
            self._closed = True
            with self._connections_lock:
                connections, self._connections = self._connections, []
            for conn in connections:
                conn.close()


class VersionedCache:
    """An in-process read cache over a :class:`SqliteFile`, right across processes.

    It empties itself whenever another process committed to the file (``PRAGMA data_version``
    on the writer, checked at every :meth:`generation`). Writes of this process go through
    the writer, where they do not show in ``data_version``: the writer calls :meth:`evict`
    with the keys it changed, after its commit. Every eviction starts a new *generation*, and
    a :meth:`fill` carries the generation it was read under, so a value read before a commit
    can never land in the cache after the eviction that commit caused. Values should be
    immutable (raw rows): callers decode a fresh object per read.

    Bounded twice: at most ``max_entries`` entries and ``max_bytes`` bytes (:func:`entry_bytes`
    of each); past either, the least recently used entries go first. A value larger than
    ``max_bytes`` on its own is never cached. Either bound at 0 turns the cache off.
    """

    def __init__(
        self, file: SqliteFile, max_entries: int = 100_000, max_bytes: int = READ_CACHE_BYTES
    ) -> None:
        self.file = file
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._entries: OrderedDict[Any, tuple[Any, int]] = OrderedDict()  # key: (value, bytes)
        self._bytes = 0
        self._lock = threading.Lock()
        self._version: int | None = None
        self._generation = 0

    @property
    def nbytes(self) -> int:
        """The bytes the entries hold now, by :func:`entry_bytes`."""
        return self._bytes

    def generation(self) -> int | None:
        """The generation to read and fill under, or None to bypass the cache this time (it
        is off, or a write of this process is in flight)."""
        if self.max_entries <= 0 or self.max_bytes <= 0:
            return None
        version = self.file.data_version(wait=False)
        if version is None:
            return None
        with self._lock:
            if version != self._version:
                self._drop_all()
                self._version = version
                self._generation += 1
            return self._generation

    def lookup(self, key: Any, default: Any = None) -> Any:
        with self._lock:
            found = self._entries.get(key)
            if found is None:
                return default
            self._entries.move_to_end(key)  # recently used: evicted last
            return found[0]

    def fill(self, generation: int, items: Mapping[Any, Any]) -> None:
        with self._lock:
            if generation != self._generation:
                return
            for key, value in items.items():
                self._pop(key)
                size = entry_bytes(key, value)
                if size > self.max_bytes:
                    continue  # would push out everything else; read from the file each time
                while self._entries and (
                    len(self._entries) >= self.max_entries or self._bytes + size > self.max_bytes
                ):
                    self._pop(next(iter(self._entries)))  # least recently used first out
                self._entries[key] = (value, size)
                self._bytes += size

    def evict(self, keys: Iterable[Any]) -> None:
        with self._lock:
            for key in keys:
                self._pop(key)
            self._generation += 1

    def clear(self) -> None:
        with self._lock:
            self._drop_all()
            self._generation += 1

    def _pop(self, key: Any) -> None:
        found = self._entries.pop(key, None)
        if found is not None:
            self._bytes -= found[1]

    def _drop_all(self) -> None:
        self._entries.clear()
        self._bytes = 0

    def __len__(self) -> int:
        return len(self._entries)


def entry_bytes(key: Any, value: Any) -> int:
    """About what one cache entry holds in memory: CPython's size of the key, of the value
    (a row tuple) and of each of its fields, plus the ordered dict's node and the size record.

    >>> entry_bytes("u1", ("u1", b"x" * 1000)) > 1000
    True
    """
    fields = value if isinstance(value, tuple) else ()
    return (
        ENTRY_OVERHEAD_BYTES
        + sys.getsizeof(key)
        + sys.getsizeof(value)
        + sum(sys.getsizeof(field) for field in fields)
    )
