"""The archive on PostgreSQL (psycopg 3).

URL: ``postgresql://user[:password]@host:port/db[?schema=name&<libpq parameters>]``.
``schema`` (default ``public``) holds the three tables, created with the schema on first
connect (``CREATE ... IF NOT EXISTS``, serialized by an advisory lock):

* ``events`` (event_id PK, user_id, session_id, type, ts timestamptz, channel, body jsonb,
  ingested_at) indexed by (user_id, ts) and (type, ts);
* ``decisions`` (decision_id PK, user_id, session_id, ts, intent, variant, body jsonb);
* ``feedback`` (decision_id PK, user_id, ts, reward, body jsonb): one row per decision, which
  a later signal of a kind it lacks extends.

Event batches go through ``COPY`` into a temporary table, then one
``INSERT ... ON CONFLICT DO NOTHING``; rewriting a row is a no-op, so replays are safe.
One connection per archive, shared by threads under a lock; a broken connection is
dropped and the next call reconnects.

>>> archive = PostgresArchive.from_url("postgresql://postgres@127.0.0.1/test")  # doctest: +SKIP
>>> archive.write_events([{"event_id": "e1", "user_id": "u1", "session_id": "s1",
...     "type": "session_started", "timestamp": "2026-01-01T10:00:00Z"}])  # doctest: +SKIP
1
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import orjson
import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from tailorbot.archive.base import ArchiveError, EventArchive, RecordRefused

_SCHEMA_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
_EVENT_COLUMNS = (
    "event_id",
    "user_id",
    "session_id",
    "type",
    "ts",
    "channel",
    "body",
    "ingested_at",
)

_DDL = """
CREATE SCHEMA IF NOT EXISTS {schema};
CREATE TABLE IF NOT EXISTS {events} (
    event_id text PRIMARY KEY,
    user_id text NOT NULL,
    session_id text NOT NULL,
    type text NOT NULL,
    ts timestamptz NOT NULL,
    channel text NOT NULL,
    body jsonb NOT NULL,
    ingested_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS events_user_ts ON {events} (user_id, ts);
CREATE INDEX IF NOT EXISTS events_type_ts ON {events} (type, ts);
CREATE TABLE IF NOT EXISTS {decisions} (
    decision_id text PRIMARY KEY,
    user_id text NOT NULL,
    session_id text,
    ts timestamptz NOT NULL,
    intent text,
    variant text,
    body jsonb NOT NULL,
    archived_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS decisions_user_ts ON {decisions} (user_id, ts);
CREATE INDEX IF NOT EXISTS decisions_ts ON {decisions} (ts);
CREATE TABLE IF NOT EXISTS {feedback} (
    decision_id text PRIMARY KEY,
    user_id text NOT NULL,
    ts timestamptz NOT NULL,
    reward double precision,
    body jsonb NOT NULL,
    archived_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS feedback_user_ts ON {feedback} (user_id, ts);
"""


def _timestamp(value: Any, field: str) -> datetime:
    """An aware datetime from ISO-8601 text, epoch seconds or a datetime (None: now)."""
    if value is None:
        return datetime.now(UTC)
    try:
        if isinstance(value, datetime):
            moment = value
        elif isinstance(value, int | float):
            moment = datetime.fromtimestamp(value, UTC)
        else:
            moment = datetime.fromisoformat(str(value))
    except (ValueError, OverflowError, OSError) as exc:
        raise ValueError(f"{field}: not a timestamp: {value!r}") from exc
    if moment.tzinfo is None:
        raise ValueError(f"{field}: timestamp {value!r} has no time zone")
    return moment


def _require(record: Mapping[str, Any], kind: str, *fields: str) -> None:
    missing = [f for f in fields if not record.get(f)]
    if missing:
        raise ValueError(f"{kind} record is missing {', '.join(missing)}")


def _json(record: Mapping[str, Any]) -> str:
    return orjson.dumps(record).decode()


class PostgresArchive(EventArchive):
    def __init__(self, dsn: str, schema: str = "public", connect_timeout_s: int = 5) -> None:
        if not _SCHEMA_NAME.match(schema):
            raise ValueError(f"schema {schema!r} is not a plain identifier (letters, digits, _)")
        self.dsn = dsn
        self.schema = schema
        self.connect_timeout_s = connect_timeout_s
        self._conn: psycopg.Connection[Any] | None = None
        self._lock = threading.Lock()
        self._names = {
            "schema": sql.Identifier(schema),
            "events": sql.Identifier(schema, "events"),
            "decisions": sql.Identifier(schema, "decisions"),
            "feedback": sql.Identifier(schema, "feedback"),
        }
        with self._transaction() as cur:
            # Concurrent first connects would race on the catalog: one creates, others wait.
            cur.execute(
                "SELECT pg_advisory_xact_lock(hashtext(%s))", (f"tailorbot-archive:{schema}",)
            )
            cur.execute(sql.SQL(_DDL).format(**self._names))

    @classmethod
    def from_url(cls, url: str) -> PostgresArchive:
        parts = urlsplit(url)
        query = parse_qsl(parts.query, keep_blank_values=True)
        schema = next((v for k, v in query if k == "schema"), "public")
        rest = urlencode([(k, v) for k, v in query if k != "schema"])
        return cls(urlunsplit(parts._replace(query=rest)), schema=schema)

    # --- writing ----------------------------------------------------------------------
    def write_events(self, events: Sequence[Mapping[str, Any]]) -> int:
        rows = [self._event_row(event) for event in events]
        if not rows:
            return 0
        columns = sql.SQL(", ").join(map(sql.Identifier, _EVENT_COLUMNS))
        with self._transaction() as cur:
            cur.execute(
                sql.SQL(
                    "CREATE TEMP TABLE IF NOT EXISTS tailorbot_events_stage "
                    "(LIKE {events}) ON COMMIT DELETE ROWS"
                ).format(**self._names)
            )
            copy_sql = sql.SQL("COPY tailorbot_events_stage ({}) FROM STDIN").format(columns)
            with cur.copy(copy_sql) as copy:
                for row in rows:
                    copy.write_row(row)
            cur.execute(
                sql.SQL(
                    "INSERT INTO {events} ({columns}) SELECT {columns} FROM tailorbot_events_stage "
                    "ON CONFLICT (event_id) DO NOTHING"
                ).format(columns=columns, **self._names)
            )
            return max(cur.rowcount, 0)

    def write_decision(self, record: Mapping[str, Any]) -> bool:
        _require(record, "decision", "decision_id", "user_id")
        row = (
            record["decision_id"],
            record["user_id"],
            record.get("session_id"),
            _timestamp(record.get("created_at"), "created_at"),
            record.get("intent"),
            record.get("variant"),
            _json(record),
        )
        query = (
            "INSERT INTO {decisions} (decision_id, user_id, session_id, ts, intent, variant, body) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (decision_id) DO NOTHING"
        )
        return self._insert_one(query, row)

    def write_feedback(self, record: Mapping[str, Any]) -> bool:
        _require(record, "feedback", "decision_id", "user_id")
        reward = record.get("reward")
        row = (
            record["decision_id"],
            record["user_id"],
            _timestamp(record.get("created_at"), "created_at"),
            None if reward is None else float(reward),
            _json(record),
        )
        # One row per decision: a later record (a rating after a click) adds the signals the
        # row lacks, what it holds stays (jsonb ``||`` keeps the right-hand side's values).
        query = (
            "INSERT INTO {feedback} AS f (decision_id, user_id, ts, reward, body) "
            "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (decision_id) DO UPDATE SET "
            "body = EXCLUDED.body || f.body, reward = COALESCE(f.reward, EXCLUDED.reward) "
            "WHERE NOT f.body ?& ARRAY(SELECT jsonb_object_keys(EXCLUDED.body))"
        )
        return self._insert_one(query, row)

    # --- reading ----------------------------------------------------------------------
    def iter_events(
        self,
        since: datetime | None = None,
        until: datetime | None = None,
        types: Iterable[str] | None = None,
        batch: int = 1000,
    ) -> Iterator[dict[str, Any]]:
        where: list[sql.Composable] = []
        params: list[Any] = []
        if since is not None:
            where.append(sql.SQL("ts >= %s"))
            params.append(since)
        if until is not None:
            where.append(sql.SQL("ts < %s"))
            params.append(until)
        if types is not None:
            where.append(sql.SQL("type = ANY(%s)"))
            params.append(list(types))
        select = sql.SQL("SELECT ts, event_id, body FROM {events}").format(**self._names)
        for row in self._pages(select, where, params, ("ts", "event_id"), batch):
            yield row[2]

    def iter_decisions(
        self, since: datetime | None = None, batch: int = 1000
    ) -> Iterator[dict[str, Any]]:
        where: list[sql.Composable] = []
        params: list[Any] = []
        if since is not None:
            where.append(sql.SQL("d.ts >= %s"))
            params.append(since)
        select = sql.SQL(
            "SELECT d.ts, d.decision_id, d.body, f.body FROM {decisions} d "
            "LEFT JOIN {feedback} f USING (decision_id)"
        ).format(**self._names)
        for row in self._pages(select, where, params, ("d.ts", "d.decision_id"), batch):
            yield {**row[2], "feedback": row[3]}

    def events_for_user(self, user_id: str) -> list[dict[str, Any]]:
        query = sql.SQL("SELECT body FROM {events} WHERE user_id = %s ORDER BY ts, event_id")
        with self._transaction() as cur:
            cur.execute(query.format(**self._names), (user_id,))
            return [row[0] for row in cur.fetchall()]

    # --- privacy ----------------------------------------------------------------------
    def erase_user(self, user_id: str) -> int:
        deleted = 0
        with self._transaction() as cur:
            for table in ("events", "decisions", "feedback"):
                query = sql.SQL("DELETE FROM {} WHERE user_id = %s").format(self._names[table])
                cur.execute(query, (user_id,))
                deleted += max(cur.rowcount, 0)
        return deleted

    # --- lifecycle --------------------------------------------------------------------
    def ping(self) -> None:
        with self._transaction() as cur:
            cur.execute("SELECT 1")

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def __repr__(self) -> str:
        return f"PostgresArchive({self._target()!r}, schema={self.schema!r})"

    # --- helpers ----------------------------------------------------------------------
    @staticmethod
    def _event_row(event: Mapping[str, Any]) -> tuple[Any, ...]:
        _require(event, "event", "event_id", "user_id", "session_id", "type", "timestamp")
        ingested = event.get("ingested_at")
        return (
            event["event_id"],
            event["user_id"],
            event["session_id"],
            event["type"],
            _timestamp(event["timestamp"], "timestamp"),
            event.get("channel") or "chat",
            _json(event),
            _timestamp(ingested, "ingested_at"),
        )

    def _insert_one(self, query: str, row: tuple[Any, ...]) -> bool:
        with self._transaction() as cur:
            cur.execute(sql.SQL(query).format(**self._names), row)  # type: ignore[arg-type]
            return cur.rowcount == 1

    def _pages(
        self,
        select: sql.Composable,
        where: list[sql.Composable],
        params: list[Any],
        key: tuple[str, str],
        batch: int,
    ) -> Iterator[tuple[Any, ...]]:
        """Rows in ``key`` order, fetched ``batch`` at a time by keyset pagination (no cursor
        stays open between pages, so the caller may stop or interleave writes)."""
        if batch < 1:
            raise ValueError(f"batch must be >= 1, got {batch}")
        order = sql.SQL(", ").join(sql.SQL(k) for k in key)
        last: tuple[Any, Any] | None = None
        while True:
            conditions = list(where)
            page_params = list(params)
            if last is not None:
                conditions.append(sql.SQL("({}) > (%s, %s)").format(order))
                page_params.extend(last)
            query = sql.SQL("{select} {where} ORDER BY {order} LIMIT %s").format(
                select=select,
                where=sql.SQL("WHERE ") + sql.SQL(" AND ").join(conditions)
                if conditions
                else sql.SQL(""),
                order=order,
            )
            with self._transaction() as cur:
                cur.execute(query, [*page_params, batch])
                rows = cur.fetchall()
            yield from rows
            if len(rows) < batch:
                return
            last = (rows[-1][0], rows[-1][1])

    @contextmanager
    def _transaction(self) -> Iterator[psycopg.Cursor[Any]]:
        with self._lock:
            conn = self._connection()
            try:
                with conn.transaction(), conn.cursor() as cur:
                    yield cur
            except (psycopg.DataError, psycopg.IntegrityError) as exc:
                detail = exc.diag.message_detail
                reason = f"{exc}" + (f" ({detail})" if detail and detail not in str(exc) else "")
                raise RecordRefused(f"postgresql archive refused the records: {reason}") from exc
            except psycopg.OperationalError as exc:
                self._conn = None  # broken: reconnect on the next call
                conn.close()
                raise ArchiveError(f"postgresql archive at {self._target()} failed: {exc}") from exc
            except psycopg.Error as exc:
                raise ArchiveError(f"postgresql archive refused the operation: {exc}") from exc

    def _connection(self) -> psycopg.Connection[Any]:
        if self._conn is None or self._conn.closed:
            try:
                self._conn = psycopg.connect(
                    self.dsn, autocommit=True, connect_timeout=self.connect_timeout_s
                )
            except psycopg.Error as exc:
                raise ArchiveError(
                    f"postgresql archive at {self._target()} is unreachable: {exc}"
                ) from exc
        return self._conn

    def _target(self) -> str:
        """host:port/db of the DSN, without credentials (for messages)."""
        try:
            info = conninfo_to_dict(self.dsn)
        except psycopg.ProgrammingError:
            return "<invalid dsn>"
        return f"{info.get('host', 'localhost')}:{info.get('port', 5432)}/{info.get('dbname', '')}"
