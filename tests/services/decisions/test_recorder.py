"""DecisionRecorder: decisions written in batches off the request path, never lost while the
process lives, never after their user's erasure, and feedback only after its decision."""

from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from tailorbot.config import Settings
from tailorbot.errors import Unavailable
from tailorbot.events.codec import decode_event, now_iso
from tailorbot.runtime import Runtime
from tailorbot.services.decisions import DecisionService
from tailorbot.services.decisions.recorder import DecisionRecorder
from tailorbot.services.decisions.records import checked_message
from tailorbot.services.decisions.schemas import FeedbackRequest, PersonalizeRequest
from tailorbot.store import StoreError
from tests.helpers import wait_until
from tests.services.decisions.conftest import CARD_MESSAGE, runtime_of

WAIT_S = 30.0


def message_event(decision_id: str, user_id: str = "u1") -> dict[str, Any]:
    return {
        "type": "message",
        "event_id": f"{decision_id}-message",
        "user_id": user_id,
        "session_id": "s1",
        "timestamp": now_iso(),
        "role": "customer",
        "text": "my card has not arrived",
    }


def logged(runtime: Runtime, user_id: str, field: str = "type") -> list[str]:
    """``field`` of each of the user's events in the log, in order."""
    partition = runtime.log.partition_for(user_id)
    return [
        decode_event(r.value)[field] for r in runtime.log.read_all(partition) if r.key == user_id
    ]


def test_many_decisions_share_a_write(runtime: Runtime) -> None:
    recorder = DecisionRecorder(runtime.ingestion, runtime.stores.decisions, flush_s=0.2)
    writes: list[int] = []
    put_many = runtime.stores.decisions.put_many
    runtime.stores.decisions.put_many = lambda items: writes.append(len(items)) or put_many(items)  # type: ignore[method-assign]
    for i in range(40):  # queued before the thread starts: one linger collects them all
        recorder.record({"decision_id": f"d{i}", "user_id": "u1"}, message_event(f"d{i}"))
    recorder.start()
    assert recorder.flush(WAIT_S)
    recorder.close()
    assert sum(writes) == 40 and len(writes) < 40
    assert all(runtime.stores.decisions.get(f"d{i}") is not None for i in range(40))
    assert logged(runtime, "u1") == ["message"] * 40


@pytest.mark.parametrize("down", ["the log", "the decision store"])
def test_a_failing_write_is_retried_and_nothing_is_written_twice(
    runtime: Runtime, down: str
) -> None:
    recorder = DecisionRecorder(runtime.ingestion, runtime.stores.decisions, flush_s=0.01)
    owner: Any = runtime.log if down == "the log" else runtime.stores.decisions
    name = "append" if down == "the log" else "put_many"
    write, failures = getattr(owner, name), [2]

    def flaky(items: Any) -> Any:
        if failures[0]:
            failures[0] -= 1
            raise Unavailable(f"{down} is down (injected)")
        return write(items)

    setattr(owner, name, flaky)
    recorder.start()
    recorder.record({"decision_id": "d1", "user_id": "u1"}, message_event("d1"))
    assert recorder.wait_written("d1", WAIT_S)
    recorder.close()
    assert recorder.failures == 2 and runtime.stores.decisions.get("d1") is not None
    assert logged(runtime, "u1") == ["message"]


def test_decisions_answering_one_message_log_it_once(runtime: Runtime) -> None:
    # A chatbot that utters twice for one customer turn (Rasa) names the same message event.
    recorder = DecisionRecorder(runtime.ingestion, runtime.stores.decisions, flush_s=0.2)
    for decision_id in ("d1", "d2"):
        event = {**message_event(decision_id), "event_id": "rasa-turn-7", "timestamp": now_iso()}
        recorder.record({"decision_id": decision_id, "user_id": "u1"}, event)
    recorder.record({"decision_id": "d3", "user_id": "u1"}, message_event("d3"))
    recorder.start()
    assert recorder.flush(WAIT_S)
    recorder.close()
    assert logged(runtime, "u1", "event_id") == ["rasa-turn-7", "d3-message"]
    assert all(runtime.stores.decisions.get(d) is not None for d in ("d1", "d2", "d3"))


def test_a_refused_message_event_costs_only_itself(runtime: Runtime) -> None:
    recorder = DecisionRecorder(runtime.ingestion, runtime.stores.decisions, flush_s=0.2)
    broken = {**message_event("d1"), "role": "robot"}  # not a role: refused by the door
    recorder.record({"decision_id": "d1", "user_id": "u1"}, broken)
    recorder.record({"decision_id": "d2", "user_id": "u1"}, message_event("d2"))
    recorder.start()
    assert recorder.flush(WAIT_S)
    recorder.close()
    assert logged(runtime, "u1", "event_id") == ["d2-message"]
    assert runtime.stores.decisions.get("d1") is not None


def test_the_message_event_is_checked_when_queued_and_the_writer_yields_the_core(
    runtime: Runtime,
) -> None:
    # Checked on the request path: the writer thread only appends (see the module's note).
    recorder = DecisionRecorder(runtime.ingestion, runtime.stores.decisions, flush_s=0.2)
    text = "mail me at jo@example.com"
    recorder.record({"decision_id": "d1", "user_id": "u1"}, {**message_event("d1"), "text": text})
    ((_, accepted),) = recorder._queue
    assert accepted.event_id == "d1-message" and "jo@example.com" not in accepted.text
    recorder.start()
    assert recorder.flush(WAIT_S)
    assert "jo@example.com" not in logged(runtime, "u1", "text")[0]
    main = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    if sys.platform.startswith("linux") and main < 19:  # niced (tailorbot._priority)
        assert recorder._thread is not None and recorder._thread.native_id is not None
        assert os.getpriority(os.PRIO_PROCESS, recorder._thread.native_id) > main
    recorder.close()


def test_a_checked_message_event_is_redacted_not_validated_again(runtime: Runtime) -> None:
    # The service's own message event, built from checked values (checked_message): the
    # door only redacts it; a dict is still validated.
    recorder = DecisionRecorder(runtime.ingestion, runtime.stores.decisions, flush_s=0.2)
    validated: list[Any] = []
    validate = runtime.ingestion._validate
    runtime.ingestion._validate = lambda *a, **k: validated.append(a) or validate(*a, **k)  # type: ignore[method-assign]
    event = {
        **message_event("d1"), "text": "mail jo@example.com", "channel": "chat",
        "intent": "card_arrival", "confidence": 0.5, "metadata": {"decision_id": "d1"},
    }  # fmt: skip
    checked = checked_message(event)
    assert checked is not None
    recorder.record({"decision_id": "d1", "user_id": "u1"}, checked)
    assert validated == []
    recorder.record({"decision_id": "d2", "user_id": "u1"}, message_event("d2"))
    assert len(validated) == 1
    recorder.start()
    assert recorder.flush(WAIT_S)
    recorder.close()
    assert logged(runtime, "u1", "event_id") == ["d1-message", "d2-message"]
    assert logged(runtime, "u1", "text")[0] == "mail <EMAIL>"


def _held_recorder(
    runtime: Runtime, batch: int
) -> tuple[DecisionRecorder, threading.Event, threading.Event]:
    """A started recorder (a linger of 30 s) whose decision-store writes wait for ``gate``;
    ``writing`` is set once one has begun: (recorder, gate, writing)."""
    gate, writing = threading.Event(), threading.Event()
    put_many = runtime.stores.decisions.put_many

    def held(items: Any) -> Any:
        writing.set()
        assert gate.wait(WAIT_S)
        return put_many(items)

    runtime.stores.decisions.put_many = held  # type: ignore[method-assign]
    recorder = DecisionRecorder(
        runtime.ingestion, runtime.stores.decisions, flush_s=30.0, batch=batch
    )
    recorder.start()
    return recorder, gate, writing


def test_a_flush_during_the_last_write_leaves_the_next_batch_its_linger(
    runtime: Runtime,
) -> None:
    # flush() while the writer writes the last queued decisions: nothing is left to hurry.
    # Urgency set then outlived the write, and the next decision was written alone at once.
    recorder, gate, writing = _held_recorder(runtime, batch=2)
    for i in (1, 2):  # a full batch: taken at once
        recorder.record({"decision_id": f"d{i}", "user_id": "u1"}, message_event(f"d{i}"))
    assert writing.wait(WAIT_S)
    flushed: list[bool] = []
    flusher = threading.Thread(target=lambda: flushed.append(recorder.flush(WAIT_S)))
    flusher.start()
    waiting = recorder._cond._waiters  # type: ignore[attr-defined]
    wait_until(lambda: bool(waiting), "the flush to wait on the write", WAIT_S)
    gate.set()
    flusher.join(WAIT_S)
    assert flushed == [True]
    assert not recorder._urgent
    recorder.close()


def test_a_wait_for_a_decision_being_written_does_not_hurry_the_next_one(
    runtime: Runtime,
) -> None:
    recorder, gate, writing = _held_recorder(runtime, batch=9)
    recorder.record({"decision_id": "d1", "user_id": "u1"}, message_event("d1"))
    done: list[bool] = []
    waiter = threading.Thread(target=lambda: done.append(recorder.wait_written("d1", WAIT_S)))
    waiter.start()  # hurries d1, which is queued: the writer takes it at once
    assert writing.wait(WAIT_S)
    waiting = recorder._cond._waiters  # type: ignore[attr-defined]
    wait_until(lambda: bool(waiting), "the wait for d1 to wait on its write", WAIT_S)
    recorder.record({"decision_id": "d2", "user_id": "u1"}, message_event("d2"))  # wakes it
    wait_until(lambda: bool(waiting), "the wait for d1 to wait again", WAIT_S)
    assert not recorder._urgent  # d2 keeps its linger: d1's wait has nothing to hurry
    gate.set()
    waiter.join(WAIT_S)
    assert done == [True]
    recorder.close()


def test_waiters_do_not_wake_each_other_while_a_write_is_slow(runtime: Runtime) -> None:
    recorder, gate, writing = _held_recorder(runtime, batch=1)
    recorder.record({"decision_id": "d1", "user_id": "u1"}, message_event("d1"))
    assert writing.wait(WAIT_S)
    for decision_id in ("d2", "d3"):  # queued behind the held write of d1
        recorder.record({"decision_id": decision_id, "user_id": "u1"}, message_event(decision_id))
    notified = [0]
    notify_all = recorder._cond.notify_all

    def counted() -> None:
        notified[0] += 1
        notify_all()

    recorder._cond.notify_all = counted  # type: ignore[method-assign]
    waiters = [
        threading.Thread(target=recorder.wait_written, args=(d, WAIT_S)) for d in ("d2", "d3")
    ]
    for thread in waiters:
        thread.start()
    waiting = recorder._cond._waiters  # type: ignore[attr-defined]
    wait_until(lambda: len(waiting) == 2, "both waits to wait", WAIT_S)
    time.sleep(0.2)  # a window in which waiters that wake each other notify thousands of times
    assert notified[0] <= 2
    gate.set()
    for thread in waiters:
        thread.join(WAIT_S)
    assert recorder.pending() == 0
    recorder.close()


def test_a_batch_never_exceeds_what_the_door_takes_in_one_append(tmp_path: Path) -> None:
    settings = Settings.load(
        data_dir=tmp_path, run_worker_in_server=False, partitions=4, max_batch_events=2
    )
    built = Runtime(settings)
    try:
        built.recorder.flush_s = 0.2
        for i in range(5):
            built.recorder.record({"decision_id": f"d{i}", "user_id": "u1"}, message_event(f"d{i}"))
        assert built.recorder.flush(WAIT_S)
        assert logged(built, "u1") == ["message"] * 5
    finally:
        built.stop()


def test_new_decisions_do_not_cut_the_retry_pause_short(runtime: Runtime) -> None:
    recorder = DecisionRecorder(runtime.ingestion, runtime.stores.decisions, flush_s=0.01, batch=2)
    attempts = [0]

    def down(items: Any) -> None:
        attempts[0] += 1
        raise Unavailable("store down (injected)")

    runtime.stores.decisions.put_many = down  # type: ignore[method-assign]
    recorder.start()
    for i in range(300):  # each one notifies the writer (full batches)
        recorder.record({"decision_id": f"d{i}", "user_id": "u1"}, message_event(f"d{i}"))
        time.sleep(0.005)
    # Backing off from 50 ms up to 2 s: about 6 attempts in these ~1.5 s, not one per decision.
    assert 1 <= attempts[0] <= 30
    recorder.close(timeout_s=1.0)


def test_closing_gives_up_on_a_backend_that_stays_down(runtime: Runtime) -> None:
    recorder = DecisionRecorder(runtime.ingestion, runtime.stores.decisions, flush_s=0.01)

    def down(items: Any) -> None:
        raise Unavailable("store down (injected)")

    runtime.stores.decisions.put_many = down  # type: ignore[method-assign]
    recorder.start()
    writer = recorder._thread
    recorder.record({"decision_id": "d1", "user_id": "u1"}, message_event("d1"))
    recorder.close(timeout_s=1.0)
    assert writer is not None
    writer.join(WAIT_S)  # it stops after one more failed attempt, not retrying forever
    assert not writer.is_alive()
    assert recorder.pending() == 1  # reported as lost by close()


def test_a_retried_batch_archives_each_decision_once(runtime: Runtime) -> None:
    archived: list[str] = []
    fail_once = [True]

    class Archive:
        def put(self, kind: str, record: Any) -> None:
            if len(archived) == 2 and fail_once[0]:
                fail_once[0] = False
                raise Unavailable("archive queue full (injected)")
            archived.append(record["decision_id"])

        def flush(self, timeout_s: float) -> bool:
            return True

    recorder = DecisionRecorder(runtime.ingestion, runtime.stores.decisions, Archive(), flush_s=0.2)
    for i in range(4):
        recorder.record({"decision_id": f"d{i}", "user_id": "u1"}, message_event(f"d{i}"))
    recorder.start()
    assert recorder.flush(WAIT_S)
    recorder.close()
    assert archived == ["d0", "d1", "d2", "d3"]
    assert logged(runtime, "u1") == ["message"] * 4


def test_a_full_queue_answers_503_at_once(runtime: Runtime) -> None:
    recorder = DecisionRecorder(runtime.ingestion, runtime.stores.decisions, max_pending=2)
    for i in range(2):  # not started: nothing drains the queue
        recorder.record({"decision_id": f"d{i}", "user_id": "u1"}, message_event(f"d{i}"))
    with pytest.raises(Unavailable, match="waiting to be written") as caught:
        recorder.record({"decision_id": "d2", "user_id": "u1"}, message_event("d2"))
    assert caught.value.http_status == 503 and caught.value.retry_after == 1
    recorder.start()
    recorder.close()
    assert runtime.stores.decisions.get("d1") is not None


def test_feedback_right_after_the_answer_waits_for_its_decision(
    service: DecisionService,
) -> None:
    runtime = runtime_of(service)
    runtime.recorder.flush_s = 5.0  # a long linger: the decision is surely still queued
    answer = service.personalize(
        PersonalizeRequest(user_id="u1", session_id="s1", message=CARD_MESSAGE)
    )
    assert runtime.recorder.pending() == 1
    result = service.feedback(FeedbackRequest(decision_id=answer.decision_id, rating=5))
    assert result.applied and runtime.recorder.pending() == 0


def test_feedback_on_a_decision_the_store_refuses_for_now_is_a_503_not_a_404(
    service: DecisionService, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A store that answers but refuses writes (a read-only replica after a failover, an
    out-of-memory Redis): the decision waits in this process's queue, and a feedback on it
    must be retried (503), not dropped as unknown (404)."""
    runtime = runtime_of(service)
    refused = StoreError("READONLY You can't write against a read only replica.")

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise refused

    monkeypatch.setattr(runtime.stores.decisions, "put_many", refuse)
    answer = service.personalize(
        PersonalizeRequest(user_id="u1", session_id="s1", message=CARD_MESSAGE)
    )
    with pytest.raises(Unavailable) as unavailable:
        service.feedback(FeedbackRequest(decision_id=answer.decision_id, rating=5))
    assert unavailable.value.retry_after is not None
    monkeypatch.undo()  # the store takes writes again: the retried feedback applies
    deadline = time.monotonic() + 60
    while True:
        try:
            result = service.feedback(FeedbackRequest(decision_id=answer.decision_id, rating=5))
            break
        except Unavailable:
            assert time.monotonic() < deadline, "the queued decision was never written"
    assert result.applied


def test_erasure_writes_the_queue_first_so_nothing_lands_after_it(
    service: DecisionService,
) -> None:
    runtime = runtime_of(service)
    runtime.recorder.flush_s = 5.0
    answer = service.personalize(
        PersonalizeRequest(user_id="gone", session_id="s1", message=CARD_MESSAGE)
    )
    assert runtime.recorder.pending() == 1
    runtime.users.erase_user("gone")
    assert runtime.recorder.pending() == 0
    assert runtime.stores.decisions.get(answer.decision_id) is None
    assert logged(runtime, "gone") == []
