"""PostgreSQL archive against the real server (127.0.0.1:5432, database ``test``).

Each test works in a schema of its own, dropped afterwards.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest

from tailorbot.archive import ArchiveError, open_archive
from tailorbot.archive.postgres import PostgresArchive
from tailorbot.events.codec import decode_event, encode_event
from tailorbot.events.schema import EVENT_ADAPTER
from tests.helpers import POSTGRES_URL as SERVER
from tests.helpers import closed_port

pytestmark = pytest.mark.integration


@pytest.fixture
def archive(schema: str) -> Iterator[PostgresArchive]:
    archive = open_archive(f"{SERVER}?schema={schema}")
    assert isinstance(archive, PostgresArchive)
    yield archive
    archive.close()


def event(type_: str, user: str, minute: int, **fields: Any) -> dict[str, Any]:
    """A validated event in its decoded log form."""
    model = EVENT_ADAPTER.validate_python(
        {
            "type": type_,
            "event_id": f"{user}-{type_}-{minute}",
            "user_id": user,
            "session_id": f"{user}-s",
            "timestamp": f"2026-01-01T10:{minute:02d}:00Z",
            **fields,
        }
    )
    return decode_event(encode_event(model, ingested_at=1767261600.5 + minute))


def history() -> list[dict[str, Any]]:
    return [
        event("session_started", "ann", 0),
        event("message", "ann", 1, role="customer", text="card lost", intent="lost_or_stolen_card"),
        event("message", "bob", 2, role="customer", text="refund please"),
        event("rating", "ann", 3, score=4),
        event("message", "ann", 4, role="bot", text="card blocked"),
        event("session_ended", "bob", 5),
    ]


def test_events_round_trip_idempotently_in_time_order(archive: PostgresArchive) -> None:
    events = history()
    assert archive.write_events(list(reversed(events))) == 6
    assert archive.write_events([*events[:2], event("resolution", "bob", 6, resolved=True)]) == 1
    assert archive.write_events([]) == 0

    stored = list(archive.iter_events())
    assert [e["event_id"] for e in stored] == [e["event_id"] for e in events] + ["bob-resolution-6"]
    assert stored[1] == events[1]  # the whole body comes back as written
    assert list(archive.iter_events(batch=2)) == stored  # pages join up without gaps
    assert [e["text"] for e in archive.iter_messages()] == [
        "card lost",
        "refund please",
        "card blocked",
    ]
    window = archive.iter_events(
        since=datetime(2026, 1, 1, 10, 2, tzinfo=UTC), until=datetime(2026, 1, 1, 10, 5, tzinfo=UTC)
    )
    assert [e["event_id"] for e in window] == ["bob-message-2", "ann-rating-3", "ann-message-4"]
    assert [e["event_id"] for e in archive.events_for_user("bob")] == [
        "bob-message-2",
        "bob-session_ended-5",
        "bob-resolution-6",
    ]


def test_decisions_and_feedback_are_joined_for_evaluation(archive: PostgresArchive) -> None:
    decision = {
        "decision_id": "d1",
        "user_id": "ann",
        "session_id": "ann-s",
        "intent": "refund",
        "variant": "empathetic",
        "propensity": 0.4,
        "created_at": "2026-01-01T10:00:00+00:00",
    }
    assert archive.write_decision(decision) is True
    assert archive.write_decision({**decision, "variant": "changed"}) is False
    assert archive.write_decision({**decision, "decision_id": "d2", "created_at": None}) is True
    assert archive.write_feedback(
        {"decision_id": "d1", "user_id": "ann", "rating": 5, "reward": 1.0}
    )
    assert not archive.write_feedback({"decision_id": "d1", "user_id": "ann", "reward": 0.0})
    # a later signal of a kind the row lacks extends it; the first values stay
    later = {"decision_id": "d1", "user_id": "ann", "rating": 1, "resolved": True, "reward": 0.0}
    assert archive.write_feedback(later)
    assert not archive.write_feedback(later)

    rows = list(archive.iter_decisions(batch=1))
    assert [(r["decision_id"], r["variant"]) for r in rows] == [
        ("d1", "empathetic"),
        ("d2", "empathetic"),
    ]
    assert rows[0]["feedback"] == {
        "decision_id": "d1",
        "user_id": "ann",
        "rating": 5,
        "resolved": True,
        "reward": 1.0,
    }
    assert rows[1]["feedback"] is None


def test_erase_user_deletes_every_row_of_the_user_only(archive: PostgresArchive) -> None:
    archive.write_events(history())
    archive.write_decision({"decision_id": "d1", "user_id": "ann"})
    archive.write_feedback({"decision_id": "d1", "user_id": "ann", "reward": 1})
    archive.write_decision({"decision_id": "d2", "user_id": "bob"})

    assert archive.erase_user("ann") == 4 + 1 + 1
    assert archive.events_for_user("ann") == []
    assert [d["decision_id"] for d in archive.iter_decisions()] == ["d2"]
    assert {e["user_id"] for e in archive.iter_events()} == {"bob"}
    assert archive.erase_user("ann") == 0


def test_schema_tables_and_indexes_are_created_once(schema: str) -> None:
    archives: list[PostgresArchive] = []
    errors: list[BaseException] = []

    def open_one() -> None:
        try:
            archives.append(
                PostgresArchive.from_url(f"{SERVER}?schema={schema}&application_name=t")
            )
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=open_one) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    for archive in archives:
        archive.ping()
        archive.close()
    with psycopg.connect(SERVER) as conn:
        tables = conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s", (schema,)
        ).fetchall()
        indexes = conn.execute(
            "SELECT indexdef FROM pg_indexes WHERE schemaname = %s AND tablename = 'events'",
            (schema,),
        ).fetchall()
    assert sorted(t for (t,) in tables) == ["decisions", "events", "feedback"]
    definitions = " ".join(d for (d,) in indexes)
    assert "(user_id, ts)" in definitions and "(type, ts)" in definitions


def test_bad_records_and_settings_are_refused_by_name(archive: PostgresArchive) -> None:
    with pytest.raises(ValueError, match="event record is missing session_id, timestamp"):
        archive.write_events([{"event_id": "e", "user_id": "u", "type": "rating"}])
    broken = {**history()[0], "timestamp": "yesterday"}
    with pytest.raises(ValueError, match="timestamp: not a timestamp"):
        archive.write_events([broken])
    with pytest.raises(ValueError, match="decision record is missing user_id"):
        archive.write_decision({"decision_id": "d"})
    with pytest.raises(ValueError, match="not a plain identifier"):
        PostgresArchive(SERVER, schema="x; DROP TABLE y")
    assert list(archive.iter_events()) == []  # nothing half-written


def test_an_unreachable_server_raises_archive_error() -> None:
    with pytest.raises(ArchiveError, match="unreachable") as caught:
        PostgresArchive(f"postgresql://postgres:secret@127.0.0.1:{closed_port()}/test")
    assert "secret" not in str(caught.value)  # credentials stay out of messages
