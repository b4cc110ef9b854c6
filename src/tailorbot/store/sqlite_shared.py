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

import time
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import orjson

from tailorbot._sqlite import SqliteFile, execute_rows
from tailorbot.events.erasure import user_digest
from tailorbot.store.base import (
    VECTOR_DTYPE,
    CounterStore,
    DecisionStore,
    FeedbackMark,
    StoreError,
    VectorDelta,
    check_finite,
    decision_made_at,
    decoded_decision,
    packed_vectors,
    unpacked_vector,
)

# The users' erasure times (the feature store's ``erasure_times`` table in the same file).
SELECT_ERASURE_TIMES = "SELECT digest, erased_at FROM erasure_times WHERE digest IN ({marks})"


MAX_MARKS = 500  # ids per IN (...) query
# Decisions as one row: [[id, record, feedback], ...] (each as the text stored), and the ids
# of those still without feedback: one SQLite step each, however many rows (execute_rows).
SELECT_DECISIONS = (
    "SELECT json_group_array(json_array(decision_id, CAST(record AS TEXT), "
    "CAST(feedback AS TEXT))) FROM decisions WHERE decision_id IN ({marks})"
)
SELECT_UNMARKED = (
    "SELECT json_group_array(decision_id) FROM decisions "
    "WHERE decision_id IN ({marks}) AND feedback IS NULL"
)
UPDATE_MARKS_HEAD = "UPDATE decisions SET feedback = marks.column2 FROM ("
UPDATE_MARKS_TAIL = ") AS marks WHERE decisions.decision_id = marks.column1"


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
            # A record's time is read only for a user erased before: almost none is.
            rows = [
                (d, u, dumps(record), now)
                for d, u, record in decisions
                if (erased_at := erased.get(digests[u])) is None
                or erased_at <= decision_made_at(record)
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
        vectors: Mapping[str, Mapping[str, VectorDelta]] | None = None,
    ) -> bool:
        mark = FeedbackMark(decision_id, feedback, increments, previous, vectors)
        return self.record_feedbacks([mark])[0]

    def get_many(self, decision_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        ids = list(dict.fromkeys(decision_ids))
        if not ids:
            return {}
        with self.file.read() as conn:
            chunks = select_in(conn, SELECT_DECISIONS, ids)
        return {
            decision_id: decoded_decision(record, feedback)
            for (found,) in chunks
            for decision_id, record, feedback in orjson.loads(found)
        }

    def record_feedbacks(self, marks: Sequence[FeedbackMark]) -> list[bool]:
        packed: list[dict[str, dict[str, bytes]]] = []
        for mark in marks:  # every delta checked before anything is written
            for deltas in (mark.increments or {}).values():
                check_finite(deltas)
            packed.append({ns: packed_vectors(v) for ns, v in (mark.vectors or {}).items()})
        # The first marks of decisions the call names once: one read of which are unmarked
        # and one update of those (a statement steps SQLite once, a row of an executemany
        # or of a result once each: see execute_rows). The others, one by one after them, in
        # order: they name other decisions, so each still sees the earlier marks of its own.
        named = Counter(mark.decision_id for mark in marks)
        at_once = [m.previous is None and named[m.decision_id] == 1 for m in marks]
        marked = [False] * len(marks)
        with self.file.write() as conn:  # one transaction: the marks and their counters
            firsts = {m.decision_id: m for m, once in zip(marks, at_once, strict=True) if once}
            if firsts:
                unmarked = {
                    decision_id
                    for (found,) in select_in(conn, SELECT_UNMARKED, list(firsts))
                    for decision_id in orjson.loads(found)
                }
                new = [(d, dumps(firsts[d].feedback)) for d in firsts if d in unmarked]
                execute_rows(conn, UPDATE_MARKS_HEAD, new, UPDATE_MARKS_TAIL)
                marked = [
                    once and m.decision_id in unmarked
                    for m, once in zip(marks, at_once, strict=True)
                ]
            for i, mark in enumerate(marks):
                if at_once[i]:
                    continue
                # IS: NULL for a first mark, else the bytes dumps() wrote (they read back alike)
                expected = dumps(mark.previous) if mark.previous is not None else None
                cursor = conn.execute(
                    "UPDATE decisions SET feedback = ? WHERE decision_id = ? AND feedback IS ?",
                    (dumps(mark.feedback), mark.decision_id, expected),
                )
                marked[i] = cursor.rowcount == 1
            # Summed per counter first: the marks of a batch add to many of the same ones
            added: dict[str, dict[str, float]] = {}
            for mark, taken in zip(marks, marked, strict=True):
                for namespace, deltas in (mark.increments or {}).items() if taken else ():
                    sums = added.setdefault(namespace, {})
                    for key, delta in deltas.items():
                        sums[key] = sums.get(key, 0.0) + float(delta)
            summed = [(ns, key, delta) for ns, sums in added.items() for key, delta in sums.items()]
            add_counter_rows(conn, summed)
            vector_sums: dict[str, dict[str, np.ndarray]] = {}
            try:  # a refusal of the stored vectors rolls the whole call back
                for vectors, taken in zip(packed, marked, strict=True):
                    for namespace, vector_deltas in vectors.items() if taken else ():
                        summed_vectors(vector_sums, namespace, vector_deltas)
                add_vector_sums(conn, vector_sums)
            except ValueError as exc:
                raise StoreError(f"sqlite: {exc}") from None
        return marked

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
            add_counter_rows(conn, rows)

    def counters(self, namespace: str) -> dict[str, float]:
        with self.file.read() as conn:
            rows = conn.execute(
                "SELECT key, value FROM counters WHERE namespace = ?", (namespace,)
            ).fetchall()
        return dict(rows)  # a REAL column reads back as float

    def add_vectors(self, namespace: str, deltas: Mapping[str, VectorDelta]) -> None:
        sums: dict[str, dict[str, np.ndarray]] = {}
        summed_vectors(sums, namespace, packed_vectors(deltas))
        if sums[namespace]:
            with self.file.write() as conn:
                add_vector_sums(conn, sums)

    def vectors(self, namespace: str) -> dict[str, np.ndarray]:
        with self.file.read() as conn:
            rows = conn.execute(
                "SELECT key, value FROM counter_vectors WHERE namespace = ?", (namespace,)
            ).fetchall()
        return {key: unpacked_vector(value) for key, value in rows}

    def stamps(self, namespaces: Sequence[str]) -> tuple[int, ...]:
        with self.file.read() as conn:
            held = dict(select_in(conn, SELECT_STAMPS, list(dict.fromkeys(namespaces))))
        return tuple(held.get(namespace, 0) for namespace in namespaces)

    def __repr__(self) -> str:
        return f"SqliteCounterStore(path={str(self.file.path)!r})"


def summed_vectors(
    added: dict[str, dict[str, np.ndarray]], namespace: str, packed: Mapping[str, bytes]
) -> None:
    """Add one write's ``packed`` vector deltas of ``namespace`` into ``added`` (namespace ->
    name -> sum): a batch's marks add to the same vectors, which are then written once.
    :class:`ValueError` when two deltas of one vector differ in length."""
    sums = added.setdefault(namespace, {})
    for name, delta in packed.items():
        vector = unpacked_vector(delta)
        before = sums.get(name)
        if before is None:
            sums[name] = vector.copy()
        elif before.shape != vector.shape:
            raise ValueError(vector_length_problem(namespace, name, len(before), len(vector)))
        else:
            with np.errstate(over="ignore"):  # the stores refuse a sum that is not finite
                before += vector


def vector_length_problem(namespace: str, name: str, stored: int, given: int) -> str:
    return (
        f"vector counter {name!r} of {namespace!r} holds {stored} values; "
        f"a delta of {given} cannot be added to it"
    )


SELECT_VECTORS = "SELECT key, value FROM counter_vectors WHERE namespace = ? AND key IN ({marks})"
PUT_VECTOR = (
    "INSERT INTO counter_vectors VALUES (?, ?, ?) "
    "ON CONFLICT (namespace, key) DO UPDATE SET value = excluded.value"
)


def add_vector_sums(conn: Any, sums: Mapping[str, Mapping[str, np.ndarray]]) -> None:
    """Add summed vector deltas (namespace -> name -> sum) to the stored vectors, inside the
    caller's write transaction (``BEGIN IMMEDIATE``: no other writer between this read and
    its write). :class:`ValueError` before any vector is written when a sum's length differs
    from its stored vector's or the new value is not finite (the caller rolls back)."""
    rows: list[tuple[str, str, bytes]] = []
    for namespace, deltas in sums.items():
        names = list(deltas)
        stored: dict[str, bytes] = {}
        for start in range(0, len(names), MAX_MARKS):
            chunk = names[start : start + MAX_MARKS]
            query = SELECT_VECTORS.format(marks=",".join("?" * len(chunk)))
            stored.update(conn.execute(query, [namespace, *chunk]).fetchall())
        for name, delta in deltas.items():
            total = delta
            if name in stored:
                before = unpacked_vector(stored[name])
                if before.shape != delta.shape:
                    raise ValueError(
                        vector_length_problem(namespace, name, len(before), len(delta))
                    )
                with np.errstate(over="ignore"):  # an overflow is refused below
                    total = before + delta
            if not np.isfinite(total).all():
                raise ValueError(
                    f"the sum of vector counter {name!r} of {namespace!r} is not finite"
                )
            rows.append((namespace, name, total.astype(VECTOR_DTYPE, copy=False).tobytes()))
    if rows:
        conn.executemany(PUT_VECTOR, rows)
        stamp(conn, {namespace for namespace, _, _ in rows})


ADD_COUNTER_TAIL = "ON CONFLICT (namespace, key) DO UPDATE SET value = value + excluded.value"
# A namespace's stamp (CounterStore.stamps), raised by each write transaction that adds to it.
STAMP_TAIL = "ON CONFLICT (namespace) DO UPDATE SET stamp = stamp + 1"
SELECT_STAMPS = "SELECT namespace, stamp FROM counter_stamps WHERE namespace IN ({marks})"


def add_counter_rows(conn: Any, rows: Sequence[tuple[str, str, float]]) -> None:
    """Add counter rows (namespace, key, delta) inside the caller's write transaction, and
    raise the stamps of their namespaces in it."""
    execute_rows(conn, "INSERT INTO counters", rows, ADD_COUNTER_TAIL)
    stamp(conn, {namespace for namespace, _, _ in rows})


def stamp(conn: Any, namespaces: Iterable[str]) -> None:
    """Raise the stamps of ``namespaces``, inside the caller's write transaction."""
    execute_rows(conn, "INSERT INTO counter_stamps", [(ns, 1) for ns in namespaces], STAMP_TAIL)


def counter_rows(namespace: str, deltas: Mapping[str, float]) -> list[tuple[str, str, float]]:
    """Rows for :func:`add_counter_rows`; :class:`ValueError` for a delta that is not finite."""
    check_finite(deltas)
    return [(namespace, key, float(delta)) for key, delta in deltas.items()]


def dumps(value: Any) -> bytes:
    if isinstance(value, Mapping) and not isinstance(value, dict):
        value = dict(value)
    try:
        return orjson.dumps(value)
    except TypeError as exc:
        raise TypeError(f"store values must be JSON-serialisable: {exc}") from exc
