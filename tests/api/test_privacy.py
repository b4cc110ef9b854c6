"""End to end: no raw PII and, after erasure, nothing of the user in any file on disk."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from tests.api.conftest import make_client
from tests.api.support import event, files_containing, message, wait_until

PII = {
    "email": "zelda.fitzgerald@example.org",
    "phone": "+44 20 7946 0958",
    "card": "4111 1111 1111 1111",
    "iban": "GB82 WEST 1234 5698 7654 32",
    "ipv4": "203.0.113.77",
    "ipv6": "2001:db8::ff00:42:8329",
}


def _settled(client: TestClient) -> bool:
    runtime = client.app.state.runtime
    return sum(runtime.log.lag(runtime.settings.consumer_group).values()) == 0


def _features(client: TestClient, user_id: str) -> bool:
    return client.get(f"/v1/users/{user_id}/features").status_code == 200


def test_planted_pii_never_reaches_disk(tmp_path: Path) -> None:
    marker = "quokkamarker"  # proves the scan sees the stored text at all
    texts = " ".join(PII.values())
    events = [
        message("pii-user", f"{marker} {texts}", metadata={f"m_{k}": v for k, v in PII.items()}),
        message("pii-user", f"my card is {PII['card']}", role="agent"),
        event("handoff", "pii-user", reason=f"{marker} call {PII['phone']} or {PII['email']}"),
        *[message("pii-user", f"{marker} {value}") for value in PII.values()],
    ]
    with make_client(tmp_path, run_worker_in_server=True) as client:
        response = client.post("/v1/events", json={"events": events})
        assert response.status_code == 202
        wait_until(lambda: _features(client, "pii-user") and _settled(client), "the worker")
    found = files_containing(tmp_path, [marker, *PII.values()])
    assert found.pop(marker), "the stored events should be visible to the scan"
    assert found == {value: [] for value in PII.values()}


def test_erasure_leaves_no_trace_on_disk(tmp_path: Path) -> None:
    user = "erin-7f3a9c"
    texts = ["walrusphrase about my parcel", "second otterphrase message"]
    with make_client(tmp_path, run_worker_in_server=True) as client:
        client.put(f"/v1/users/{user}", json={"name": "Erin Q", "tier": "gold"})
        batch = [message(user, text, session_id="sess-erin-1") for text in texts]
        batch.append(message("someone-else", "unrelated kiwiphrase"))
        assert client.post("/v1/events", json={"events": batch}).status_code == 202
        wait_until(lambda: _features(client, user) and _settled(client), "the worker")
        assert files_containing(tmp_path, [user])[user], "the user should be on disk before"
        assert client.delete(f"/v1/users/{user}").status_code == 204
    found = files_containing(tmp_path, [user, "sess-erin-1", "Erin Q", *texts, "kiwiphrase"])
    assert found.pop("kiwiphrase"), "other users' events stay"
    assert found == {needle: [] for needle in found}


VARIANT_PII = {
    "card_nbsp": "4111\u00a01111\u00a01111\u00a01111",
    "card_dots": "5500.0000.0000.0004",
    "phone_ext": "+1 415 555 2671 x123",
    "phone_nbsp": "020\u00a07946\u00a00958",
    "email_url": "yolanda%40example.org",
    "ssn": "078-05-1120",
    "key_email": "xavier@example.net",
}


def test_variant_spellings_and_metadata_keys_never_reach_disk(tmp_path: Path) -> None:
    marker = "wombatmarker"
    text = f"{marker} " + " ".join(v for k, v in VARIANT_PII.items() if k != "key_email")
    events = [
        message("v-user", text, metadata={VARIANT_PII["key_email"]: "vip", "n": 4111111111111111}),
        event("handoff", "v-user", reason=f"{marker} {VARIANT_PII['phone_ext']}"),
    ]
    with make_client(tmp_path, run_worker_in_server=True) as client:
        response = client.post("/v1/events", json={"events": events})
        assert response.status_code == 202, response.text
        wait_until(lambda: _features(client, "v-user") and _settled(client), "the worker")
    needles = [marker, *VARIANT_PII.values(), "4111111111111111", "x123", "yolanda"]
    found = files_containing(tmp_path, needles)
    assert found.pop(marker), "the stored events should be visible to the scan"
    assert found == {needle: [] for needle in needles[1:]}


def test_erasure_reaches_the_dead_letters(tmp_path: Path) -> None:
    user = "dlq-user-42"
    with make_client(tmp_path, run_worker_in_server=False) as client:
        runtime = client.app.state.runtime
        # A record the worker cannot decode (no timestamp): it is set aside as a dead letter,
        # key (the user id) and bytes (the text) as logged.
        raw = f'{{"user_id": "{user}", "type": "message", "text": "badgerword"}}'
        runtime.log.append([(user, raw.encode()), ("bystander", b"{}")])
        worker = runtime.stream_worker()
        try:
            worker.run_once()
        finally:
            worker.close()
        assert {d.key for d in runtime.dead_letters.list()} == {user, "bystander"}
        assert client.delete(f"/v1/users/{user}").status_code == 204
        assert [d.key for d in runtime.dead_letters.list()] == ["bystander"]
    assert files_containing(tmp_path, [user, "badgerword"]) == {user: [], "badgerword": []}
