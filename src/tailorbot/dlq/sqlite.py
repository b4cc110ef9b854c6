"""Dead letters in the embedded SQLite store file (a table of its own).

>>> import tempfile
>>> from tailorbot.dlq.base import DeadLetter
>>> letters = open_dead_letters(f"sqlite:///{tempfile.mkdtemp()}/store.db")
>>> letters.put([DeadLetter("g", 0, 5, "u1", b"{}", "refused", 1.0)])
>>> [(d.letter_id, d.reason) for d in letters.list()], letters.drop(["g:0:5"]), letters.count()
([('g:0:5', 'refused')], 1, 0)
>>> letters.close()
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from tailorbot._backends import positive_float, typed_options
from tailorbot._sqlite import SqliteFile, parse_sqlite_url, synchronous_level
from tailorbot.dlq.base import DeadLetter, DeadLetterError, DeadLetterStore

SCHEMA = """
CREATE TABLE IF NOT EXISTS dead_letters (
    letter_id TEXT PRIMARY KEY, grp TEXT NOT NULL, partition INTEGER NOT NULL,
    offset INTEGER NOT NULL, key TEXT NOT NULL, value BLOB NOT NULL, reason TEXT NOT NULL,
    failed_at REAL NOT NULL
);
"""
URL_OPTIONS = {"synchronous": synchronous_level, "busy_timeout": positive_float}
_COLUMNS = "grp, partition, offset, key, value, reason, failed_at"


class SqliteDeadLetters(DeadLetterStore):
    def __init__(self, file: SqliteFile) -> None:
        self.file = file

    def put(self, letters: Sequence[DeadLetter]) -> None:
        rows = [
            (d.letter_id, d.group, d.partition, d.offset, d.key, d.value, d.reason, d.failed_at)
            for d in letters
        ]
        with self.file.write() as conn:
            conn.executemany(
                f"INSERT OR REPLACE INTO dead_letters (letter_id, {_COLUMNS}) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )

    def list(self, limit: int = 100) -> list[DeadLetter]:
        with self.file.read() as conn:
            rows = conn.execute(
                f"SELECT {_COLUMNS} FROM dead_letters ORDER BY failed_at, letter_id LIMIT ?",
                (limit,),
            ).fetchall()
        return [DeadLetter(g, p, o, k, bytes(v), r, t) for g, p, o, k, v, r, t in rows]

    def drop(self, letter_ids: Iterable[str]) -> int:
        ids = [(letter_id,) for letter_id in letter_ids]
        with self.file.write() as conn:
            before = conn.total_changes
            conn.executemany("DELETE FROM dead_letters WHERE letter_id = ?", ids)
            return conn.total_changes - before

    def erase_user(self, user_id: str) -> int:
        with self.file.write() as conn:
            deleted = conn.execute("DELETE FROM dead_letters WHERE key = ?", (user_id,)).rowcount
        # secure_delete zeroed the rows in their pages; the WAL still holds old page images.
        self.file.scrub()
        return int(deleted)

    def count(self) -> int:
        with self.file.read() as conn:
            return int(conn.execute("SELECT count(*) FROM dead_letters").fetchone()[0])

    def close(self) -> None:
        self.file.close()


def open_dead_letters(url: str, **options: Any) -> SqliteDeadLetters:
    """The dead letters of the SQLite store file at ``url`` (``sqlite:///path/store.db``; the
    store's ``synchronous`` and ``busy_timeout`` options apply, the others are the store's)."""
    path, url_options = parse_sqlite_url(url)
    shared = {k: v for k, v in url_options.items() if k in URL_OPTIONS}
    typed = typed_options(shared, options, URL_OPTIONS, "sqlite")
    return SqliteDeadLetters(SqliteFile(path, SCHEMA, DeadLetterError, **typed))
