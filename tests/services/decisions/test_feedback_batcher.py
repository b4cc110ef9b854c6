"""Feedback in batches: the batcher's thread, and a batch applied by the real handler (one
log append and one store write for all, each feedback answered as if alone)."""

from __future__ import annotations

import contextvars
import threading
from collections import Counter
from collections.abc import Sequence
from typing import Any

import pytest

from tailorbot.errors import InvalidInput, NotFound, Unavailable
from tailorbot.events.codec import decode_event
from tailorbot.services.decisions import DecisionNotWritten, DecisionService
from tailorbot.services.decisions.feedback_batcher import FeedbackBatcher
from tailorbot.services.decisions.schemas import FeedbackRequest, FeedbackResponse
from tailorbot.store.base import FeedbackMark, StoreError
from tests.api.support import wait_until
from tests.services.decisions.conftest import CARD_MESSAGE, WAIT_S, ask, runtime_of, tell

REQUEST_ID: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")


class HeldApply:
    """``apply_many`` that records each batch and holds the first until released (so the
    next submissions queue behind it)."""

    def __init__(self) -> None:
        self.batches: list[list[Any]] = []
        self.seen_ids: list[str] = []
        self.started = threading.Event()
        self.release = threading.Event()

    def __call__(self, requests: Sequence[Any], contexts: Sequence[Any]) -> list[Any]:
        self.batches.append(list(requests))
        self.seen_ids += [c.run(REQUEST_ID.get) for c in contexts]
        self.started.set()
        if not self.release.wait(WAIT_S):
            raise RuntimeError("never released")
        return [ValueError(f"bad {r}") if r < 0 else r * 10 for r in requests]


def submitted_as(batcher: FeedbackBatcher, request: Any, request_id: str) -> Any:
    REQUEST_ID.set(request_id)
    return batcher.submit(request)


def test_what_queues_behind_a_batch_is_the_next_batch_in_order() -> None:
    held = HeldApply()
    batcher = FeedbackBatcher(held, max_batch=3)
    batcher.start()
    try:
        first = contextvars.copy_context().run(submitted_as, batcher, 1, "r1")
        assert held.started.wait(WAIT_S)
        rest = [
            contextvars.copy_context().run(submitted_as, batcher, n, f"r{n}") for n in range(2, 7)
        ]
        cancelled = batcher.submit(99)
        assert cancelled.cancel()  # its caller gave up before its batch: not applied
        bad = batcher.submit(-1)
        held.release.set()
        assert first.result(WAIT_S) == 10
        assert [f.result(WAIT_S) for f in rest] == [20, 30, 40, 50, 60]
        with pytest.raises(ValueError, match="bad -1"):
            bad.result(WAIT_S)
    finally:
        batcher.close()
    assert held.batches == [[1], [2, 3, 4], [5, 6], [-1]]  # at most max_batch, 99 dropped
    assert held.seen_ids == ["r1", "r2", "r3", "r4", "r5", "r6", "-"]  # each its own context
    assert (batcher.batches, batcher.handled) == (4, 7)


def test_feedback_sent_one_at_a_time_never_waits_for_a_linger() -> None:
    batches: list[list[Any]] = []
    batcher = FeedbackBatcher(
        lambda requests, contexts: batches.append(list(requests)) or [r for r in requests],
        linger_s=120,
    )
    batcher.start()
    try:  # each answered long before the 120 s linger: nothing could join its batch
        assert [batcher.submit(n).result(WAIT_S) for n in range(3)] == [0, 1, 2]
    finally:
        batcher.close()
    assert batches == [[0], [1], [2]]


def test_feedback_that_comes_together_lingers_until_full_or_closed() -> None:
    held = HeldApply()
    batcher = FeedbackBatcher(held, linger_s=120, max_batch=3)
    batcher.start()
    try:
        first = batcher.submit(1)
        assert held.started.wait(WAIT_S)
        together = [batcher.submit(n) for n in (2, 3, 4)]  # queued behind the first batch
        held.release.set()
        assert [f.result(WAIT_S) for f in [first, *together]] == [10, 20, 30, 40]
        # the last batch held three: the next ones linger until their batch is full
        full = [batcher.submit(n) for n in (5, 6, 7)]
        assert [f.result(WAIT_S) for f in full] == [50, 60, 70]
        lingering = batcher.submit(8)
    finally:
        batcher.close(timeout_s=WAIT_S)  # applies the lingering one now
    assert lingering.result(0) == 80
    assert held.batches == [[1], [2, 3, 4], [5, 6, 7], [8]]


def test_a_full_queue_and_a_closed_batcher_refuse_and_close_applies_what_waits() -> None:
    held = HeldApply()
    batcher = FeedbackBatcher(held, max_pending=2)
    with pytest.raises(Unavailable, match="stopped"):
        batcher.submit(1)  # not started
    batcher.start()
    first = batcher.submit(1)
    assert held.started.wait(WAIT_S)
    waiting = [batcher.submit(2), batcher.submit(3)]
    with pytest.raises(Unavailable, match="2 feedbacks are waiting") as refused:
        batcher.submit(4)
    assert refused.value.http_status == 503 and refused.value.retry_after
    held.release.set()
    batcher.close()
    assert [f.result(0) for f in [first, *waiting]] == [10, 20, 30]
    with pytest.raises(Unavailable, match="stopped"):
        batcher.submit(5)
    batcher.close()  # idempotent


def test_a_batch_that_fails_as_a_whole_fails_each_of_its_feedbacks() -> None:
    short: list[Any] = []
    batcher = FeedbackBatcher(lambda requests, contexts: short)
    batcher.start()
    try:
        with pytest.raises(RuntimeError, match="0 answers for 1 feedbacks"):
            batcher.submit(1).result(WAIT_S)
    finally:
        batcher.close()
    go = threading.Event()

    def broken(requests: Sequence[Any], contexts: Sequence[Any]) -> list[Any]:
        go.wait(WAIT_S)
        raise RuntimeError("bug")

    batcher = FeedbackBatcher(broken)
    batcher.start()
    try:
        futures = [batcher.submit(n) for n in range(3)]
        go.set()
        errors = [f.exception(WAIT_S) for f in futures]
    finally:
        batcher.close()
    assert all(isinstance(e, RuntimeError) and str(e) == "bug" for e in errors)
    assert len({id(e) for e in errors}) == 3  # each its own, to raise in its own task


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_a_batcher_whose_thread_died_answers_503_and_leaves_nothing_waiting() -> None:
    go = threading.Event()

    def exits(requests: Sequence[Any], contexts: Sequence[Any]) -> list[Any]:
        go.wait(WAIT_S)
        raise SystemExit("the thread ends")

    batcher = FeedbackBatcher(exits)
    batcher.start()
    try:
        running = batcher.submit(1)
        queued = batcher.submit(2)  # waits behind it (or shares its batch)
        go.set()
        assert isinstance(running.exception(WAIT_S), Unavailable)
        assert isinstance(queued.exception(WAIT_S), Unavailable)
        wait_until(lambda: not batcher._thread.is_alive(), "the batcher's thread to end")
        with pytest.raises(Unavailable, match="stopped"):
            batcher.submit(3)
    finally:
        batcher.close()


# --- a batch through the real handler ------------------------------------------------------


def logged(service: DecisionService, decision_ids: set[str]) -> Counter[tuple[str, str]]:
    log = runtime_of(service).log
    events = (decode_event(r.value) for p in range(log.num_partitions) for r in log.read_all(p))
    return Counter(
        (e["metadata"]["decision_id"], e["type"])
        for e in events
        if e["metadata"].get("decision_id") in decision_ids and e["type"] != "message"
    )


def test_a_batch_is_one_append_and_one_write_and_each_answer_is_its_own(
    service: DecisionService, monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime = runtime_of(service)
    a, b, fed = (ask(service, f"u-batch-{n}", CARD_MESSAGE) for n in range(3))
    assert tell(service, fed.decision_id, clicked_article_id=fed.articles[0].id).applied
    offered = {x.id for x in b.articles}
    elsewhere = next(x.id for x in service.models.composer.kb.articles if x.id not in offered)
    appends: list[int] = []
    writes: list[int] = []
    append, record = runtime.log.append, runtime.stores.decisions.record_feedbacks
    monkeypatch.setattr(
        runtime.log, "append", lambda items: appends.append(len(items)) or append(items)
    )
    monkeypatch.setattr(
        runtime.stores.decisions,
        "record_feedbacks",
        lambda marks: writes.append(len(marks)) or record(marks),
    )
    requests = [
        FeedbackRequest(decision_id=a.decision_id, rating=5, resolved=True),
        FeedbackRequest(decision_id=a.decision_id, rating=1),  # the same decision again
        FeedbackRequest(decision_id=b.decision_id, clicked_article_id=elsewhere),  # no outcome
        FeedbackRequest(decision_id=b.decision_id, helpful_article_id="no-such-article"),
        FeedbackRequest(decision_id="d-unknown", rating=3),
        FeedbackRequest(decision_id=fed.decision_id, rating=4),  # after its click's outcome
    ]
    answers = service._feedback.apply_many(requests)
    # the batch's events (a's rating and resolution, a's second rating, b's click, fed's
    # later rating) are one append, and its three marks (fed's extending its click's) one
    # write; a's second lost, and adds nothing as a later one (a has its rating)
    assert appends == [5] and writes == [3]
    first, again, click, unknown_article, unknown, later = answers
    assert isinstance(first, FeedbackResponse) and first.applied and first.reward is not None
    # the second first-outcome of a lost the compare-and-set in the same write: a later one
    assert isinstance(again, FeedbackResponse) and not again.applied
    assert isinstance(click, FeedbackResponse) and not click.applied and click.reward is None
    assert isinstance(unknown_article, InvalidInput)
    assert isinstance(unknown, DecisionNotWritten) and isinstance(unknown, NotFound)
    assert isinstance(later, FeedbackResponse) and not later.applied
    stored = runtime.stores.decisions.get(a.decision_id)["feedback"]
    assert (stored["rating"], stored["resolved"]) == (5, True)  # the first one's outcome
    assert runtime.stores.decisions.get(b.decision_id).get("feedback") is None
    assert runtime.stores.decisions.get(fed.decision_id)["feedback"]["rating"] == 4
    report = service.experiment_report()
    assert sum(arm.feedback for arm in report.arms.values()) == 2  # a's and fed's, once each
    assert logged(service, {a.decision_id, b.decision_id, fed.decision_id}) == {
        (a.decision_id, "rating"): 2,  # the same event id twice: the worker counts it once
        (a.decision_id, "resolution"): 1,
        (b.decision_id, "article_viewed"): 1,
        (fed.decision_id, "article_viewed"): 1,
        (fed.decision_id, "rating"): 1,
    }
    with pytest.raises(NotFound):  # alone, the unknown decision is waited for, then 404
        tell(service, "d-unknown", rating=3)


def test_a_batch_the_log_refuses_writes_nothing_and_each_feedback_gets_the_error(
    service: DecisionService, monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime = runtime_of(service)
    decided = [ask(service, f"u-refused-{n}", CARD_MESSAGE) for n in range(3)]

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise Unavailable("log down (injected)")

    monkeypatch.setattr(runtime.ingestion, "append_accepted", refuse)
    requests = [FeedbackRequest(decision_id=d.decision_id, rating=4) for d in decided]
    answers = service._feedback.apply_many(requests)
    assert all(isinstance(e, Unavailable) for e in answers)
    assert len({id(e) for e in answers}) == 3  # each its own, to raise in its own task
    assert all(runtime.stores.decisions.get(d.decision_id).get("feedback") is None for d in decided)
    monkeypatch.undo()
    retried = service._feedback.apply_many(requests)
    assert all(isinstance(r, FeedbackResponse) and r.applied for r in retried)


def test_the_service_applies_submitted_feedback_in_its_batcher(service: DecisionService) -> None:
    answer = ask(service, "u-submit", CARD_MESSAGE)
    future = service.submit_feedback(FeedbackRequest(decision_id=answer.decision_id, rating=5))
    assert future.result(WAIT_S).applied
    registry = service.metrics.registry
    assert registry.get_sample_value("tailorbot_feedback_batch_size_count") == 1
    assert registry.get_sample_value("tailorbot_feedback_batch_size_sum") == 1
    missing = service.submit_feedback(FeedbackRequest(decision_id="d-missing", rating=5))
    assert isinstance(missing.exception(WAIT_S), DecisionNotWritten)
    service.close()
    with pytest.raises(Unavailable):
        service.submit_feedback(FeedbackRequest(decision_id=answer.decision_id, rating=1))


def test_a_decision_the_recorder_cannot_write_fails_only_its_own_feedback(
    service: DecisionService, monkeypatch: pytest.MonkeyPatch
) -> None:
    stuck, fine = (ask(service, f"u-stuck-{n}", CARD_MESSAGE) for n in range(2))
    waited: list[float] = []

    def wait_written(decision_id: str, timeout_s: float) -> bool:
        waited.append(timeout_s)
        return decision_id != stuck.decision_id  # the store refuses the recorder's writes

    monkeypatch.setattr(service.recorder, "wait_written", wait_written)
    requests = [FeedbackRequest(decision_id=d.decision_id, rating=5) for d in (stuck, fine)]
    refused, applied = service.feedback_batch(requests)
    assert isinstance(refused, Unavailable) and "not taking writes" in refused.message
    assert isinstance(applied, FeedbackResponse) and applied.applied
    assert runtime_of(service).stores.decisions.get(stuck.decision_id).get("feedback") is None
    assert waited[1] <= waited[0]  # one deadline for the batch, not one per feedback


def test_marks_that_landed_before_a_write_failed_are_taken_the_rest_answer_503(
    service: DecisionService, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A Redis pipeline is not one transaction: a write may fail after some marks landed.
    Those are taken (counted, archived); the others answer 503, and their retry applies."""
    decisions = runtime_of(service).stores.decisions
    landed, lost = (ask(service, f"u-partial-{n}", CARD_MESSAGE) for n in range(2))
    record = decisions.record_feedbacks

    def first_then_down(marks: Sequence[FeedbackMark]) -> list[bool]:
        record(marks[:1])
        raise StoreError("connection lost mid-pipeline (injected)")

    monkeypatch.setattr(decisions, "record_feedbacks", first_then_down)
    requests = [FeedbackRequest(decision_id=d.decision_id, rating=5) for d in (landed, lost)]
    taken, refused = service.feedback_batch(requests)
    assert isinstance(taken, FeedbackResponse) and taken.applied
    assert isinstance(refused, Unavailable) and refused.http_status == 503
    report = service.experiment_report()
    assert sum(arm.feedback for arm in report.arms.values()) == 1
    monkeypatch.undo()
    (retried,) = service.feedback_batch(requests[1:])
    assert isinstance(retried, FeedbackResponse) and retried.applied

    def down(marks: Sequence[FeedbackMark]) -> list[bool]:
        raise StoreError("down (injected)")

    monkeypatch.setattr(decisions, "record_feedbacks", down)
    later = [FeedbackRequest(decision_id=landed.decision_id, resolved=True)]
    (refused_again,) = service.feedback_batch(later)  # none landed: the write's error
    assert isinstance(refused_again, Unavailable)
