"""The archive keeps only the decisions the store wrote: one made before its user's erasure
(queued, or in flight, while the user was erased) is refused by the store and must not
outlive the erasure in the archive."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import pytest

from tailorbot.events.codec import now_iso
from tailorbot.runtime import Runtime
from tailorbot.services.decisions.recorder import DecisionRecorder
from tailorbot.services.decisions.service import DecisionService
from tests.services.decisions.conftest import runtime_of
from tests.services.decisions.test_recorder import WAIT_S, message_event


class Archive:
    """The archive's record queue, in memory."""

    def __init__(self) -> None:
        self.decisions: list[str] = []

    def put(self, kind: str, record: Mapping[str, Any]) -> None:
        self.decisions.append(record["decision_id"])

    def flush(self, timeout_s: float) -> bool:
        return True


def test_the_recorder_archives_only_what_the_store_wrote(runtime: Runtime) -> None:
    archive = Archive()
    recorder = DecisionRecorder(runtime.ingestion, runtime.stores.decisions, archive, 0.01)
    made = now_iso()
    time.sleep(0.01)
    runtime.users.erase_user("gone")  # after the decision was made, before it is written
    recorder.record({"decision_id": "d-gone", "user_id": "gone", "created_at": made},
                    message_event("d-gone", "gone"))  # fmt: skip
    recorder.record({"decision_id": "d-kept", "user_id": "kept", "created_at": made},
                    message_event("d-kept", "kept"))  # fmt: skip
    recorder.start()
    assert recorder.flush(WAIT_S)
    recorder.close()
    assert runtime.stores.decisions.get("d-gone") is None
    assert archive.decisions == ["d-kept"]


def test_respond_archives_no_decision_the_store_refused(
    service: DecisionService, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The reply reads the user, then the user is erased (another process), then the reply
    writes its decision: the store refuses it, and so must the archive."""
    runtime = runtime_of(service)
    archive = Archive()
    monkeypatch.setattr(service, "archive", archive)
    read = service._read_user

    def read_then_erased(user_id: str) -> Any:
        found = read(user_id)
        time.sleep(0.01)
        runtime.users.erase_user(user_id)
        return found

    monkeypatch.setattr(service, "_read_user", read_then_erased)
    decided = service.respond("u-greet", "s1", None)
    assert runtime.stores.decisions.get(decided["decision_id"]) is None
    assert archive.decisions == []
    monkeypatch.setattr(service, "_read_user", read)
    kept = service.respond("u-greet", "s2", None)  # the user may come back
    assert archive.decisions == [kept["decision_id"]]
