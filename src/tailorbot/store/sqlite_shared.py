"""The SQLite concerns the decision plane writes: decisions awaiting feedback and the shared
additive counters (a feedback's mark and what it taught go in one transaction), and what
every concern of the shared store file has in common (ping, the JSON encoding, counter rows).
:func:`tailorbot.store.sqlite.open_stores` opens them with the others over one file.

>>> counter_rows("bandit", {"arm-a/n": 1})
[('bandit', 'arm-a/n', 1.0)]
>>> counter_rows("bandit", {"arm-a/n": float("nan")})
Traceback (most recent call last):
ValueError: counter deltas must be finite numbers; not so for ['arm-a/n']
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import orjson

from tailorbot._sqlite import SqliteFile
from tailorbot.events.erasure import user_digest
from tailorbot.store.base import CounterStore, DecisionStore, decision_made_at, decoded_decision

# The users' erasure times (the feature store's ``erasure_times`` table in the same file).
SELECT_ERASURE_TIMES = "SELECT digest, erased_at FROM erasure_times WHERE digest IN ({marks})"


MAX_MARKS = 500  # ids per IN (...) query


def select_in(conn: Any, query: str, keys: list[str]) -> list[tuple[Any, ...]]:
    """Rows of ``query`` (with ``IN ({marks})``) for ``keys``, in chunks of MAX_MARKS."""
    rows: list[tuple[Any, ...]] = []
    for start in range(0, len(keys), MAX_MARKS):
        chunk = keys[start : start + MAX_MARKS]
        rows += conn.execute(query.format(marks=",".join("?" * len(chunk))), chunk).fetchall()
    return rows


class SqliteConcern:
    """What every concern does with the shared file: ping it."""

    file: SqliteFile

    def ping(self) -> None:
        with self.file.read() as conn:
            conn.execute("SELECT 1").fetchall()


class SqliteDecisionStore(SqliteConcern, DecisionStore):
    """Decisions awaiting feedback in the shared file (indexed by user for erasure)."""

    def __init__(self, file: SqliteFile) -> None:
        self.file = file

    def put_many(self, decisions: Sequence[tuple[str, str, Mapping[str, Any]]]) -> set[str]:
        if not decisions:
            return set()
        now = time.time()
        digests = {u: user_digest(u) for _, u, _ in decisions}
        with self.file.write() as conn:
            # In the write transaction, so no erasure lands between this read and the write.
            erased = dict(select_in(conn, SELECT_ERASURE_TIMES, list(set(digests.values()))))
            rows = [
                (d, u, dumps(record), now)
                for d, u, record in decisions
                if erased.get(digests[u], -math.inf) <= decision_made_at(record)
            ]
            conn.executemany(
                "INSERT INTO decisions VALUES (?, ?, ?, NULL, ?) ON CONFLICT (decision_id) "
                "DO UPDATE SET user_id = excluded.user_id, record = excluded.record",
                rows,
            )
        return {row[0] for row in rows}

    def get(self, decision_id: str) -> dict[str, Any] | None:
        with self.file.read() as conn:
            row = conn.execute(
                "SELECT record, feedback FROM decisions WHERE decision_id = ?", (decision_id,)
            ).fetchall()
        if not row:
            return None
        return decoded_decision(*row[0])

    def record_feedback(
        self,
        decision_id: str,
        feedback: Mapping[str, Any],
        increments: Mapping[str, Mapping[str, float]] | None = None,
        previous: Mapping[str, Any] | None = None,
    ) -> bool:
        rows = [
            row
            for namespace, deltas in (increments or {}).items()
            for row in counter_rows(namespace, deltas)
        ]
        with self.file.write() as conn:  # one transaction: the mark and the counters
            # IS: NULL for a first mark, else the bytes dumps() wrote (they read back alike)
            expected = dumps(previous) if previous is not None else None
            cursor = conn.execute(
                "UPDATE decisions SET feedback = ? WHERE decision_id = ? AND feedback IS ?",
                (dumps(feedback), decision_id, expected),
            )
            if cursor.rowcount != 1:
                return False
            conn.executemany(ADD_COUNTER, rows)
            return True

    def erase_user(self, user_id: str) -> None:
        with self.file.write() as conn:
            conn.execute("DELETE FROM decisions WHERE user_id = ?", (user_id,))
        self.file.scrub()

    def scan(self, since: float | None = None) -> Iterator[dict[str, Any]]:
        with self.file.read() as conn:
            rows = conn.execute(
                "SELECT record, feedback FROM decisions WHERE created_at >= ? "
                "ORDER BY created_at, rowid",
                (since if since is not None else float("-inf"),),
            ).fetchall()
        for record, feedback in rows:
            yield decoded_decision(record, feedback)

    def purge(self, created_before: float) -> int:
        with self.file.write() as conn:
            cursor = conn.execute("DELETE FROM decisions WHERE created_at < ?", (created_before,))
            return cursor.rowcount

    def __repr__(self) -> str:
        return f"SqliteDecisionStore(path={str(self.file.path)!r})"


class SqliteCounterStore(SqliteConcern, CounterStore):
    """Additive float counters in the shared file (an upsert adds: nothing is lost)."""

    def __init__(self, file: SqliteFile) -> None:
        self.file = file

    def increment(self, namespace: str, deltas: Mapping[str, float]) -> None:
        rows = counter_rows(namespace, deltas)
        if not rows:
            return
        with self.file.write() as conn:
            conn.executemany(ADD_COUNTER, rows)

    def counters(self, namespace: str) -> dict[str, float]:
        with self.file.read() as conn:
            rows = conn.execute(
                "SELECT key, value FROM counters WHERE namespace = ?", (namespace,)
            ).fetchall()
        return {key: float(value) for key, value in rows}

    def __repr__(self) -> str:
        return f"SqliteCounterStore(path={str(self.file.path)!r})"


ADD_COUNTER_TAIL = "ON CONFLICT (namespace, key) DO UPDATE SET value = value + excluded.value"
ADD_COUNTER = f"INSERT INTO counters VALUES (?, ?, ?) {ADD_COUNTER_TAIL}"


def counter_rows(namespace: str, deltas: Mapping[str, float]) -> list[tuple[str, str, float]]:
    """Rows for :data:`ADD_COUNTER`; :class:`ValueError` for a delta that is not finite."""
    rows = [(namespace, key, float(delta)) for key, delta in deltas.items()]
    bad = sorted(key for _, key, delta in rows if not math.isfinite(delta))
    if bad:
        raise ValueError(f"counter deltas must be finite numbers; not so for {bad}")
    return rows


def dumps(value: Any) -> bytes:
    if isinstance(value, Mapping) and not isinstance(value, dict):
        value = dict(value)
    try:
        return orjson.dumps(value)
    except TypeError as exc:
        raise TypeError(f"store values must be JSON-serialisable: {exc}") from exc
