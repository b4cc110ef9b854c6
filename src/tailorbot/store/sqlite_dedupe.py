"""The embedded store's dedupe ids (see :mod:`tailorbot.store.state_blob`): the rows of the
``dedupe_ids`` table, by user and time, that a feature record's write adds to and drops from,
and the worker's read of records with them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from tailorbot._sqlite import SqliteFile, execute_rows
from tailorbot.store.base import UNCHANGED, FeatureRecord
from tailorbot.store.sqlite_shared import select_in
from tailorbot.store.state_blob import DEDUPE_KEY, decode_state

# The rows record_of() reads (every read of feature records but a decision's).
SELECT_RECORDS = (
    "SELECT user_id, state, partition, offset, event_time, updated_at, version "
    "FROM feature_records WHERE user_id IN ({marks})"
)
# A state's dedupe ids (store/state_blob.py), by user and time: a write adds a few, and drops
# those below the state's floor with one range delete.
# Two columns, a user at a time: dict() of the rows is the cheapest way from SQLite to a map
# (a UNION with the records, or a JSON object built by SQLite, took twice as long).
SELECT_IDS = "SELECT event_id, ts FROM dedupe_ids WHERE user_id = ?"
DELETE_IDS = "DELETE FROM dedupe_ids WHERE user_id IN ({marks})"
DROP_IDS_BELOW = "DELETE FROM dedupe_ids WHERE user_id = ? AND ts < ?"
ADD_IDS_TAIL = "ON CONFLICT DO NOTHING"


def record_of(row: tuple[Any, ...]) -> FeatureRecord:
    """The record of a row, its state whole but for the ids kept apart (``dedupe``
    :data:`UNCHANGED` then: the caller adds them)."""
    user_id, blob, partition, offset, event_time, updated_at, version = row
    state, apart = decode_state(blob)
    dedupe = UNCHANGED if apart else None
    return FeatureRecord(user_id, state, partition, offset, event_time, updated_at, version, dedupe)


def write_ids(
    written: Sequence[tuple[FeatureRecord, Mapping[str, float] | None]], conn: Any
) -> None:
    """The dedupe ids of the records just written, a user once, each with the ids it keeps
    apart (None: they are in its blob, or it has none): a record's delta, or all of its ids
    in place of what the user had."""
    # A record whose ids are in its blob deletes no rows: while its blob holds the ids, rows
    # are never read; the next write apart without a delta replaces them, one with a delta
    # comes from a writer whose newer state those rows are the base of (it wrote them, and
    # only a later whole write of its own replaces them), and erasure deletes them. The
    # delete's B-tree seek would cost every small user's write.
    replaced = [r.user_id for r, apart in written if r.dedupe is None and apart is not None]
    select_in(conn, DELETE_IDS, replaced)
    rows: list[tuple[str, float, str]] = []
    dropped: list[tuple[str, float]] = []
    for record, apart in written:
        user, delta = record.user_id, record.dedupe
        if apart is None:
            continue
        added = apart if delta is None else delta.added
        rows += [(user, ts, event_id) for event_id, ts in added.items()]
        if delta is not None and delta.floor is not None:
            dropped.append((user, delta.floor))
    if rows:
        execute_rows(conn, "INSERT INTO dedupe_ids", rows, ADD_IDS_TAIL)
    if dropped:  # rare: a user's ids are pruned hourly at most
        conn.executemany(DROP_IDS_BELOW, dropped)


def records_with_ids(file: SqliteFile, users: list[str]) -> dict[str, FeatureRecord]:
    """The records of ``users`` with the dedupe ids kept apart, read with their ids in one
    read transaction, so that they agree (a user erased meanwhile is left out)."""
    with file.snapshot() as conn:
        records = {row[0]: record_of(row) for row in select_in(conn, SELECT_RECORDS, users)}
        for user, record in records.items():
            if record.dedupe is not None:
                record.state[DEDUPE_KEY] = dict(conn.execute(SELECT_IDS, (user,)).fetchall())
    return records
