"""Bad input, one table: each row a request that must be answered with a clear 4xx naming
the field and the reason (never a 500), and must leave the log as it was."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient

from tailorbot.events.codec import now_iso
from tests.api.conftest import log_ends, make_client
from tests.api.support import event, message
from tests.services.decisions.conftest import save_model


@dataclass(frozen=True)
class Bad:
    method: str
    path: str
    status: int
    field: str | None  # the problem's field (None: the message says it all)
    words: str  # in the problem's reason, or in the message
    json: Any = None
    content: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)


SAME_TIME = now_iso()
DEEP_500 = b"[" * 500 + b"]" * 500  # as bytes: JSON encoders recurse per level too

ROWS: dict[str, Bad] = {
    "timestamp past year 9999 in UTC": Bad(
        "POST",
        "/v1/events",
        422,
        "timestamp",
        "outside the range",
        json=message(timestamp="9999-12-31T23:59:59-14:00"),
    ),
    "timestamp before year 1 in UTC": Bad(
        "POST",
        "/v1/events",
        422,
        "timestamp",
        "outside the range",
        json=message(timestamp="0001-01-01T00:00:00+14:00"),
    ),
    "rating true": Bad(
        "POST", "/v1/events", 422, "score", "integer", json=event("rating", score=True)
    ),
    "rating as a string": Bad(
        "POST", "/v1/events", 422, "score", "integer", json=event("rating", score="5")
    ),
    "metadata integer beyond 64 bits": Bad(
        "POST",
        "/v1/events",
        422,
        "metadata",
        "64-bit",
        json=message(metadata={"n": 2**70}),
    ),
    "repeated event_id, other content": Bad(
        "POST",
        "/v1/events",
        422,
        "event_id",
        "repeats the event_id",
        json=[message(event_id="e1", text="a"), message(event_id="e1", text="b")],
    ),
    "repeats an event_id with other personal data": Bad(
        "POST",
        "/v1/events",
        422,
        "event_id",
        "different content",  # the same once redacted: still not the same event
        json=[
            message(event_id="e2", text=f"mail {who}@example.com", timestamp=SAME_TIME)
            for who in ("jo", "bob")
        ],
    ),
    "epoch seconds as timestamp": Bad(
        "POST",
        "/v1/events",
        422,
        "timestamp",
        "not read as an epoch",
        json=message(timestamp=1796054901),
    ),
    "epoch milliseconds as a string": Bad(
        "POST", "/v1/events", 422, "timestamp", "ISO-8601", json=message(timestamp="1796054901000")
    ),
    "e-mail as user id": Bad(
        "POST", "/v1/events", 422, "user_id", "e-mail", json=message("jane@example.com")
    ),
    "SSN as session id": Bad(
        "POST",
        "/v1/events",
        422,
        "session_id",
        "social security",
        json=message(session_id="078-05-1120"),
    ),
    "article not in the knowledge base": Bad(
        "POST",
        "/v1/events",
        422,
        "article_id",
        "knowledge base",
        json=event("article_viewed", article_id="kb-invented"),
    ),
    "text/plain body": Bad(
        "POST",
        "/v1/events",
        415,
        None,
        "application/json",
        content=b'{"type": "session_started"}',
        headers={"content-type": "text/plain"},
    ),
    "no Content-Type, personalize": Bad(
        "POST",
        "/v1/personalize",
        415,
        None,
        "missing Content-Type",
        content=b'{"user_id": "u1", "session_id": "s1", "message": "hi"}',
    ),
    "no Content-Type, feedback": Bad(
        "POST",
        "/v1/feedback",
        415,
        None,
        "missing Content-Type",
        content=b'{"decision_id": "d1", "rating": 5}',
    ),
    "not JSON": Bad(
        "POST",
        "/v1/events",
        400,
        None,
        "not valid JSON",
        content=b"{",
        headers={"content-type": "application/json"},
    ),
    "NaN is not JSON": Bad(
        "POST",
        "/v1/events",
        400,
        None,
        "not valid JSON",
        content=b'{"type": "rating", "score": NaN}',
        headers={"content-type": "application/json"},
    ),
    "partial mode, nothing valid": Bad(
        "POST", "/v1/events?partial=true", 422, "type", "missing", json=[{}]
    ),
    "an array as a metadata value": Bad(
        "POST", "/v1/events", 422, "metadata", "not an array", json=message(metadata={"a": [1]})
    ),
    "an object as a profile attribute": Bad(
        "PUT", "/v1/users/u1", 422, "attributes", "not an object", json={"attributes": {"a": {}}}
    ),
    "profile integer beyond 64 bits": Bad(
        "PUT",
        "/v1/users/u1",
        422,
        "attributes",
        "64-bit",
        json={"attributes": {"big": 1180591620717411303424}},
    ),
    "profile value too large": Bad(
        "PUT",
        "/v1/users/u1",
        422,
        "attributes",
        "longer than 1024",
        json={"attributes": {"note": "x" * 5000}},
    ),
    "consent as a string": Bad(
        "PUT",
        "/v1/users/u1",
        422,
        "consent.personalization",
        "boolean",
        json={"consent": {"personalization": "false"}},
    ),
    "e-mail as user id in the path": Bad(
        "PUT",
        "/v1/users/jane@example.com",
        422,
        "user_id (path)",
        "e-mail",
        json={},
    ),
    "feedback rating true": Bad(
        "POST",
        "/v1/feedback",
        422,
        "rating",
        "integer",
        json={"decision_id": "d1", "rating": True},
    ),
    "NUL in a user id (not removed: that would merge two users)": Bad(
        "POST", "/v1/events", 422, "user_id", "pattern", json=message("zz\u0000top")
    ),
    "list nested 500 deep in an unknown field": Bad(
        "POST",
        "/v1/events",
        422,
        "x",
        "Extra inputs",
        content=orjson.dumps(message()).replace(b"}", b',"x":' + DEEP_500 + b"}"),
        headers={"content-type": "application/json"},
    ),
    "long number nested 1000 deep": Bad(
        "POST",
        "/v1/events",
        400,
        None,
        "nested too deeply",
        content=b"[" * 1000 + b"1234567890123456789012" + b"]" * 1000,
        headers={"content-type": "application/json"},
    ),
    "KB article with a list nested 900 deep": Bad(
        "PUT",
        "/v1/kb/articles/kb-test1",
        422,
        "articles[kb-test1].x",
        "nested more than",
        content=b'{"title": "T", "body": "B", "intents": ["card_arrival"], "x": '
        + b"[" * 900
        + b"]" * 900
        + b"}",
        headers={"content-type": "application/json"},
    ),
    "personalize with a phone number as user id": Bad(
        "POST",
        "/v1/personalize",
        422,
        "user_id",
        "phone number",
        json={"user_id": "415-555-2671", "session_id": "s1", "message": "hi"},
    ),
}


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    data_dir: Path = tmp_path_factory.mktemp("bad-input")
    save_model(data_dir)
    with make_client(data_dir, run_worker_in_server=False) as test_client:
        yield test_client


@pytest.mark.parametrize("name", sorted(ROWS))
def test_bad_input_is_a_clear_4xx(client: TestClient, name: str) -> None:
    bad = ROWS[name]
    before = log_ends(client)
    response = client.request(
        bad.method, bad.path, json=bad.json, content=bad.content, headers=bad.headers
    )
    assert response.status_code == bad.status, response.text
    body = response.json()
    assert set(body) == {"error", "message", "problems"}
    if bad.field is None:
        assert bad.words in body["message"]
    else:
        assert any(
            p["field"] == bad.field and bad.words in p["reason"] for p in body["problems"]
        ), body
    assert log_ends(client) == before, "a refused request must not write to the log"


def test_a_bad_value_is_one_problem_in_our_words(client: TestClient) -> None:
    """One problem naming the field, not one per member of pydantic's union of value types
    (``metadata.a.str``, ``metadata.a.int``...), and no ``Value error,`` prefix."""
    events = client.post("/v1/events", json=message(metadata={"a": [1]}))
    profile = client.put("/v1/users/u1", json={"attributes": {"a": [1]}})
    for response in (events, profile):
        problems = response.json()["problems"]
        assert len(problems) == 1, problems
        assert not problems[0]["reason"].startswith("Value error"), problems
