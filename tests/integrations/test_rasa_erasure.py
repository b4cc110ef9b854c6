"""Rasa slots after an erasure: a re-delivered batch whose slot events were made before the
user's erasure must not bring the erased profile back (HTTP and the broker consumer)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tailorbot.config import Settings
from tailorbot.runtime import Runtime
from tests.api.conftest import make_client
from tests.integrations.test_rasa_consumer_refused import Record, consumer_of

SLOTS = ("customer_name=name", "plan=attributes.plan")


def conversation(sender: str, t0: float) -> list[dict[str, Any]]:
    return [
        {"sender_id": sender, "event": "user", "timestamp": t0, "text": "hi, I'm Ada"},
        {"sender_id": sender, "event": "slot", "timestamp": t0 + 1, "name": "customer_name",
         "value": "Ada"},
        # the envelope shape dates its events in RFC 3339 text
        {"conversation_id": sender, "timestamp": datetime.fromtimestamp(t0 + 2, UTC).isoformat(),
         "slot_set": {"name": "plan", "value": "5G"}},
    ]  # fmt: skip


@pytest.fixture
def api(tmp_path: Path) -> Iterator[TestClient]:
    with make_client(tmp_path, run_worker_in_server=False, rasa_slot_attributes=SLOTS) as client:
        yield client


def test_a_redelivered_batch_does_not_restore_an_erased_profile(api: TestClient) -> None:
    profiles = api.app.state.runtime.stores.profiles
    batch = conversation("c-7", time.time() - 30)
    assert api.post("/v1/integrations/rasa/events", json=batch).status_code == 202
    assert profiles.get("c-7")["name"] == "Ada"
    assert api.delete("/v1/users/c-7").status_code == 204
    again = api.post("/v1/integrations/rasa/events", json=batch)
    assert again.status_code == 202, again.text
    assert again.json()["profiles_updated"] == 0
    assert profiles.get("c-7") is None


def test_slots_set_after_the_erasure_are_written(api: TestClient) -> None:
    profiles = api.app.state.runtime.stores.profiles
    assert api.delete("/v1/users/c-8").status_code == 204
    before, after = conversation("c-8", time.time() - 30), conversation("c-8", time.time() + 1)
    # one batch across the erasure: only what was said since counts
    mixed = [before[1], after[0], after[2]]
    answer = api.post("/v1/integrations/rasa/events", json=mixed)
    assert answer.status_code == 202, answer.text
    assert answer.json()["profiles_updated"] == 1
    stored = profiles.get("c-8")
    assert stored["name"] is None and stored["attributes"] == {"plan": "5G"}


def test_the_consumer_does_not_restore_an_erased_profile(tmp_path: Path) -> None:
    settings = Settings.load(
        data_dir=tmp_path, run_worker_in_server=False, partitions=2, rasa_slot_attributes=SLOTS
    )
    runtime = Runtime(settings)
    try:
        consumer, kafka = consumer_of(runtime)
        consumer.mapper = runtime.rasa_mapper()
        records = [Record(e, i) for i, e in enumerate(conversation("c-9", time.time() - 30))]
        assert consumer._process(records) is True
        assert runtime.stores.profiles.get("c-9")["attributes"] == {"plan": "5G"}
        runtime.users.erase_user("c-9")
        assert consumer._process(records) is True  # the batch re-read after a crash
        assert kafka.committed == [(0, 3), (0, 3)]
        assert runtime.stores.profiles.get("c-9") is None
    finally:
        runtime.stop()
