"""Helpers shared by the runtime, API and CLI tests: event builders, polling, file scans."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from fastapi.testclient import TestClient

T = TypeVar("T")

WAIT_S = 30.0  # generous bound for the worker on a busy 2-core machine (not a timing check)


def now_iso() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def message(user_id: str = "u1", text: str = "hello", **fields: Any) -> dict[str, Any]:
    return {
        "type": "message",
        "role": "customer",
        "text": text,
        "user_id": user_id,
        "session_id": fields.pop("session_id", "s1"),
        "timestamp": fields.pop("timestamp", now_iso()),
        **fields,
    }


def event(kind: str, user_id: str = "u1", **fields: Any) -> dict[str, Any]:
    return {
        "type": kind,
        "user_id": user_id,
        "session_id": fields.pop("session_id", "s1"),
        "timestamp": fields.pop("timestamp", now_iso()),
        **fields,
    }


def wait_until(probe: Callable[[], T | None], what: str, timeout: float = WAIT_S) -> T:
    """Poll ``probe`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what} after {timeout:.0f}s")
        time.sleep(0.02)


def files_containing(root: Path, needles: Iterable[str]) -> dict[str, list[str]]:
    """For each needle, the files under ``root`` whose bytes contain it (UTF-8)."""
    wanted = {needle: needle.encode() for needle in needles}
    found: dict[str, list[str]] = {needle: [] for needle in wanted}
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        data = path.read_bytes()
        for needle, raw in wanted.items():
            if raw in data:
                found[needle].append(str(path.relative_to(root)))
    return found


def written_decision(api: TestClient, decision_id: str) -> dict[str, Any]:
    """The stored decision of a test client's server, once its recorder wrote it (decisions
    are written in batches, off the request path: reading the store at once races that)."""
    runtime = api.app.state.runtime
    assert runtime.recorder.wait_written(decision_id, timeout_s=WAIT_S)
    decision: dict[str, Any] = runtime.stores.decisions.get(decision_id)
    return decision
