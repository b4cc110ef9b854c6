"""POST /v1/events answers the same on the lean ASGI path (api/fast_ingest.py) as through
FastAPI's routing: the same bodies, the same errors, the same metrics label, the same log."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tailorbot.events.codec import decode_event
from tests.api.conftest import make_client
from tests.api.support import event, message

OK = message("u1", "mail jo@example.com", event_id="e-1")
# (what, query, body, headers); bodies as bytes are sent as they are
CASES: list[tuple[str, str, Any, dict[str, str]]] = [
    ("one event", "", OK, {}),
    ("batch", "", {"events": [message("u2", event_id="e-2"), event("rating", "u3", score=5,
                                                                   event_id="e-3")]}, {}),
    ("bare array", "", [event("session_ended", "u4", event_id="e-4")], {}),
    ("repeat in batch", "", [OK, OK], {}),
    ("invalid event", "", [OK, event("rating", score=9, event_id="e-5")], {}),
    ("unknown type", "", [{"type": "nope", "user_id": "u1"}], {}),
    ("pii in an id", "", [message("jo@example.com", event_id="e-6")], {}),
    ("partial", "partial=true", [message("u5", event_id="e-7"), event("rating", score=0)], {}),
    ("partial off", "partial=false", [message("u5", event_id="e-8")], {}),
    ("partial as 1", "partial=1", [message("u6", event_id="e-9")], {}),
    ("partial not a bool", "partial=maybe", [message("u6", event_id="e-10")], {}),
    ("other query", "x=1", [message("u6", event_id="e-11")], {}),
    ("text too long", "", [message("u7", "x" * 5000, event_id="e-12")], {}),
    ("too many events", "", [message("u8") for _ in range(1001)], {}),
    ("empty batch", "", {"events": []}, {}),
    ("extra key", "", {"events": [OK], "more": 1}, {}),
    ("not json", "", b"{nope", {"content-type": "application/json"}),
    ("empty body", "", b"", {"content-type": "application/json"}),
    ("not an object", "", b"7", {"content-type": "application/json"}),
    ("not json content", "", b"{}", {"content-type": "text/plain"}),
    ("no key", "", OK, {"x-api-key": ""}),
    ("wrong key", "", OK, {"x-api-key": "bad"}),
]  # fmt: skip


def answers(data_dir: Path, fast: bool) -> tuple[dict[str, tuple[int, Any]], list[Any]]:
    """Each case's (status, body) and what the log holds afterwards (without the times)."""
    out = {}
    with make_client(
        data_dir,
        run_worker_in_server=False,
        fast_routes=fast,
        api_key="k",
        partitions=4,
        max_text_chars=4000,
    ) as client:
        for what, query, body, headers in CASES:
            sent = {"x-api-key": "k", **headers}
            url = "/v1/events" + (f"?{query}" if query else "")
            if isinstance(body, bytes):
                response = client.post(url, content=body, headers=sent)
            else:
                response = client.post(url, json=body, headers=sent)
            payload = response.json()
            for result in payload.get("results", []):
                if result.get("event_id", "").startswith("e-") is False:
                    result["event_id"] = "(assigned)"
            out[what] = (response.status_code, payload)
        metrics = client.get("/metrics", headers={"x-api-key": "k"}).text
        assert 'tailorbot_request_latency_seconds_count{route="/v1/events"}' in metrics
        log = client.app.state.runtime.log
        stored = []
        for partition in range(4):
            for record in log.read(partition, 0, 10_000):
                stored_event = decode_event(record.value)
                del stored_event["ingested_at"]
                stored.append((partition, record.offset, record.key, stored_event))
    return out, stored


def test_the_fast_path_answers_like_fastapi(tmp_path: Path) -> None:
    (fast, fast_log), (slow, slow_log) = (
        answers(tmp_path / "a", fast=True),
        answers(tmp_path / "b", fast=False),
    )
    assert fast.keys() == slow.keys()
    for what in fast:
        assert fast[what] == slow[what], what
    assert fast_log == slow_log and len(fast_log) == 9
    statuses = {what: status for what, (status, _) in fast.items()}
    assert statuses["one event"] == statuses["batch"] == statuses["bare array"] == 202
    assert statuses["partial"] == 200 and statuses["partial off"] == 202
    assert statuses["partial as 1"] == 200 and statuses["partial not a bool"] == 422
    assert statuses["invalid event"] == statuses["unknown type"] == 422
    assert statuses["pii in an id"] == statuses["extra key"] == statuses["empty batch"] == 422
    assert statuses["text too long"] == statuses["too many events"] == 413
    assert statuses["not json"] == statuses["empty body"] == 400
    assert statuses["not json content"] == 415
    assert (statuses["no key"], statuses["wrong key"]) == (401, 403)
    assert fast["one event"][1]["results"][0]["event_id"] == "e-1"
    redacted = [e for _, _, _, e in fast_log if e["event_id"] == "e-1"]
    assert redacted[0]["text"] == "mail <EMAIL>"
