"""The training sources drop what a user's erasure drops, by the stream worker's own rule
(:meth:`~tailorbot.store.base.Erasure.drops`): a record of the user that reached the log after
the erasure (an event re-sent, dated before it; a decision's message event appended by another
process) never comes back through ``dataset build``, ``label export`` or ``train-recs``."""

from __future__ import annotations

import csv
import json
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
from typer.testing import CliRunner

from tailorbot.cli import app
from tailorbot.config import Settings
from tailorbot.events.codec import encode_event
from tailorbot.events.schema import EVENT_ADAPTER
from tailorbot.log import open_log
from tailorbot.models.pipeline.source import applicable_records, log_events
from tailorbot.runtime import Runtime
from tailorbot.services.users import UserService
from tailorbot.store import open_stores
from tests.models.pipeline.support import support_log, write_support_log

VICTIM = "u0"
runner = CliRunner()


def _event(user: str, event_id: str, at: str, text: str = "hello") -> bytes:
    return orjson.dumps(
        {"type": "message", "event_id": event_id, "user_id": user, "session_id": f"{user}-s",
         "timestamp": at, "role": "customer", "text": text}
    )  # fmt: skip


@pytest.fixture
def backends(tmp_path: Path):
    log = open_log(f"sqlite:///{tmp_path}/log.db", 2)
    stores = open_stores(f"sqlite:///{tmp_path}/stores.db")
    yield log, stores
    log.close()
    stores.close()


def test_records_of_an_erased_user_after_the_erasure_are_skipped(backends: Any) -> None:
    log, stores = backends
    log.append([("u1", _event("u1", "a1", "2026-01-01T10:00:00Z")),
                ("u2", _event("u2", "b1", "2026-01-01T10:00:00Z"))])  # fmt: skip
    UserService(log, stores).erase_user("u1")
    later = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 3600))
    log.append([
        ("u1", _event("u1", "a1", "2026-01-01T10:00:00Z", "re-sent")),  # dated before: dropped
        ("u1", _event("u1", "a2", later)),  # above the watermark and dated after: the user again
        ("u2", _event("u2", "b2", "2026-01-01T11:00:00Z")),
    ])  # fmt: skip
    events = log_events(log, features=stores.features)
    assert [e["event_id"] for e in events] == ["b1", "b2", "a2"]
    assert all(e.get("text") != "re-sent" for e in events)
    kept = applicable_records(log, None, features=stores.features)
    assert sorted(event["event_id"] for _, _, event in kept) == ["a2", "b1", "b2"]


def test_without_a_feature_store_nothing_is_filtered(backends: Any) -> None:
    log, stores = backends
    UserService(log, stores).erase_user("u1")
    log.append([("u1", _event("u1", "a1", "2026-01-01T10:00:00Z"))])
    assert [e["event_id"] for e in log_events(log, features=None)] == ["a1"]


def _erase_then_resend(data_dir: Path) -> None:
    """Erase the victim, then append the victim's events again (as a client retrying a batch
    would)."""
    events, _ = support_log(users=60, contacts=5, label_share=0.5, seed=4)
    mine = [e for e in events if e["user_id"] == VICTIM]
    runtime = Runtime(Settings.load(data_dir=data_dir, run_worker_in_server=False))
    try:
        runtime.users.erase_user(VICTIM)
        runtime.log.append([(VICTIM, encode_event(EVENT_ADAPTER.validate_python(e))) for e in mine])
    finally:
        runtime.stop()


def _cli(*args: object) -> None:
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, result.output


def test_dataset_build_and_label_export_leave_out_the_erased_user(tmp_path: Path) -> None:
    write_support_log(tmp_path, label_share=0.5)
    _erase_then_resend(tmp_path)
    _cli("dataset", "build", "--data-dir", tmp_path, "--out", tmp_path / "d.jsonl")
    rows = [json.loads(line) for line in (tmp_path / "d.jsonl").read_text().splitlines()]
    assert rows and not [r for r in rows if r["user_id"] == VICTIM]
    _cli("label", "export", "--data-dir", tmp_path, "--out", tmp_path / "l.csv", "--limit", 10_000)
    with (tmp_path / "l.csv").open(newline="") as handle:
        exported = list(csv.DictReader(handle))
    assert exported and not [r for r in exported if r["user_id"] == VICTIM]
