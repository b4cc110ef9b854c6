"""Poison records in the stream worker: a record that decodes but that the feature state
refuses (a rating without a score...) goes to the dead letters with the reason, and the rest
of the batch, the other partitions and the commit go on, exactly once; a backend error is
still retried. A letter of a user erased after its record is never kept."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from tailorbot.config import Settings
from tailorbot.dlq import DeadLetterStore, open_dead_letters
from tailorbot.dlq.base import DeadLetterError
from tailorbot.features.memory import NS_SEGMENT_VARIANT
from tailorbot.log import EventLog, open_log
from tailorbot.metrics import Metrics
from tailorbot.models.recommend.collaborative import NAMESPACES
from tailorbot.services.users import UserService
from tailorbot.store import Stores, open_stores
from tailorbot.store.base import StoreError
from tailorbot.stream import worker as worker_module
from tailorbot.stream.worker import StreamWorker
from tests.stream.eventgen import T0, make_event

Backends = tuple[EventLog, Stores, DeadLetterStore, Settings]
USERS = [f"u{i}" for i in range(8)]
VARIANT = {"decision_id": "d", "variant": "concise", "article": "kb-2"}


def open_backends(path: Path) -> Backends:
    settings = Settings(data_dir=path, partitions=4, worker_batch=40)
    log = open_log(settings.resolved_log_url(), settings.partitions)
    stores = open_stores(settings.resolved_store_url())
    return log, stores, open_dead_letters(settings.resolved_store_url()), settings


@pytest.fixture
def backends(tmp_path: Path) -> Iterator[Backends]:
    opened = open_backends(tmp_path / "run")
    yield opened
    for backend in opened[:3]:
        backend.close()


def good_events(start: int, n: int) -> list[dict[str, Any]]:
    """``n`` events of every user, article and feedback events among them (they feed the
    shared counters)."""
    kinds: list[tuple[str, dict[str, Any]]] = [
        ("message", {"intent": "lost_card"}),
        ("article_viewed", {"article_id": "kb-2"}),
        ("resolution", {"resolved": True, "article_id": "kb-2", "metadata": VARIANT}),
        ("article_feedback", {"article_id": "kb-2", "helpful": True, "metadata": VARIANT}),
        ("rating", {"score": 4, "metadata": VARIANT}),
    ]
    events = []
    for i in range(start, start + n):
        kind, fields = kinds[i % len(kinds)]
        user = USERS[i % len(USERS)]
        events.append(
            make_event(kind, T0 + i, event_id=f"e{i}", user_id=user, session_id=user, **fields)
        )
    return events


def poison(event_id: str, user: str, kind: str, at: float) -> dict[str, Any]:
    """Decodes (the five fields the worker reads are there) but cannot be applied."""
    event = make_event(kind, at, event_id=event_id, user_id=user, session_id=user)
    del event["score" if kind == "rating" else "helpful"]
    return event


def append(log: EventLog, events: list[dict[str, Any]]) -> None:
    log.append([(e["user_id"], orjson.dumps({**e, "ingested_at": time.time()})) for e in events])


def drain(worker: StreamWorker) -> None:
    for _ in range(1000):
        if not worker.run_once():
            return
    raise AssertionError("the worker never caught up")


def lag(log: EventLog, settings: Settings) -> int:
    return sum(log.lag(settings.consumer_group).values())


def assert_same_as_without_poison(
    stores: Stores, tmp_path: Path, batches: list[list[dict[str, Any]]]
) -> None:
    """The feature states and the shared counters are those of a worker that never saw the
    poison records (the same good events, in the same order)."""
    log, clean, letters, settings = open_backends(tmp_path / "clean")
    worker = StreamWorker(log, clean, settings)
    try:
        for events in batches:
            append(log, events)
            drain(worker)
        worker.close()
        for user in USERS:
            got, want = stores.features.get(user), clean.features.get(user)
            assert got is not None and want is not None, user
            assert got.state == want.state, user
        for namespace in (*NAMESPACES, NS_SEGMENT_VARIANT):
            want_counters = clean.counters.counters(namespace)
            assert stores.counters.counters(namespace) == want_counters, namespace
        assert any(clean.counters.counters(ns) for ns in NAMESPACES)  # not a check of nothing
    finally:
        log.close(), clean.close(), letters.close()


@pytest.mark.parametrize("cached", [False, True], ids=["stored-state", "cached-state"])
def test_an_event_the_state_refuses_goes_to_the_dead_letters_and_the_rest_is_applied(
    backends: Backends, tmp_path: Path, cached: bool
) -> None:
    log, stores, letters, settings = backends
    metrics = Metrics()
    worker = StreamWorker(log, stores, settings, metrics=metrics, dead_letters=letters)
    first, second = good_events(0, 60), good_events(60, 60)
    if cached:  # the users' states are in the worker's cache when the poison comes
        append(log, first)
        drain(worker)
    bad = [
        poison("x1", "u1", "rating", T0 + 70.5),  # the reviewer's record: no score
        poison("x2", "u2", "article_feedback", T0 + 71.5),  # no "helpful"
    ]
    # the poison among good events of the same users, in the same batch
    append(log, [*([] if cached else first), *second[:10], *bad, *second[10:]])
    drain(worker)
    worker.close()
    assert lag(log, settings) == 0
    shown = sorted(letters.list(), key=lambda letter: letter.key)
    assert [orjson.loads(letter.value)["event_id"] for letter in shown] == ["x1", "x2"]
    assert [letter.key for letter in shown] == ["u1", "u2"]
    assert "KeyError('score')" in shown[0].reason and "KeyError('helpful')" in shown[1].reason
    assert all(letter.reason.startswith("could not be applied") for letter in shown)
    assert worker.counts["malformed"] == 2 and worker.counts["applied"] == 120
    group = {"group": settings.consumer_group}
    assert metrics.registry.get_sample_value("tailorbot_dead_letters_total", group) == 2
    assert_same_as_without_poison(stores, tmp_path, [first, second] if cached else [first + second])


def test_without_a_dead_letter_store_the_record_is_skipped_not_retried(
    backends: Backends,
) -> None:
    log, stores, _, settings = backends
    append(log, [*good_events(0, 20), poison("x1", "u1", "rating", T0 + 30), *good_events(20, 20)])
    worker = StreamWorker(log, stores, settings)
    drain(worker)
    worker.close()
    assert lag(log, settings) == 0
    assert worker.counts["malformed"] == 1 and worker.counts["applied"] == 40


def test_a_backend_error_while_applying_is_retried_not_dead_lettered(
    backends: Backends, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log, stores, letters, settings = backends
    events = good_events(0, 60)
    append(log, events)
    real = worker_module.apply_outcome
    failures = iter([True])

    def store_down(*args: Any) -> str:
        if next(failures, False):
            raise StoreError("store unreachable")
        return real(*args)

    monkeypatch.setattr(worker_module, "apply_outcome", store_down)
    worker = StreamWorker(log, stores, settings, dead_letters=letters)
    with pytest.raises(StoreError):
        worker.run_once()
    assert letters.count() == 0 and sum(log.committed(settings.consumer_group).values()) == 0
    worker.close()
    worker = StreamWorker(log, stores, settings, dead_letters=letters)
    drain(worker)
    worker.close()
    assert letters.count() == 0 and worker.counts["applied"] == 60
    assert_same_as_without_poison(stores, tmp_path, [events])


def test_a_failed_letter_write_is_retried_and_the_letter_kept(
    backends: Backends, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The letters are kept before the feature records that pass them: when keeping them
    fails, the batch is read again and the refused record set aside again, not skipped as
    applied already."""
    log, stores, letters, settings = backends
    events = good_events(0, 20)
    append(log, [*events[:10], poison("x1", "u1", "rating", T0 + 15.5), *events[10:]])
    real_put = letters.put
    failures = iter([True])

    def put_fails_once(batch: Any) -> None:
        if next(failures, False):
            raise DeadLetterError("dead-letter store unreachable")
        real_put(batch)

    monkeypatch.setattr(letters, "put", put_fails_once)
    worker = StreamWorker(log, stores, settings, dead_letters=letters)
    with pytest.raises(DeadLetterError):
        worker.run_once()
    worker.close()
    worker = StreamWorker(log, stores, settings, dead_letters=letters)
    drain(worker)
    worker.close()
    assert [orjson.loads(letter.value)["event_id"] for letter in letters.list()] == ["x1"]
    assert lag(log, settings) == 0 and worker.counts["applied"] == 20
    assert_same_as_without_poison(stores, tmp_path, [events])


# --- erasure and the dead letters ---------------------------------------------------------


def erase_once(users: UserService, user: str) -> Callable[[], None]:
    done: list[bool] = []

    def erase() -> None:
        if not done:
            done.append(True)
            users.erase_user(user)

    return erase


@pytest.mark.parametrize("when", ["before-the-commit", "while-the-letters-are-put"])
def test_a_letter_of_a_user_erased_during_the_batch_is_not_kept(
    backends: Backends, monkeypatch: pytest.MonkeyPatch, when: str
) -> None:
    """DELETE /v1/users/victim after the worker polled the victim's undecodable record and
    before its commit: the erasure deleted the letters it found, and the commit must not
    bring the victim's back."""
    log, stores, letters, settings = backends
    erase = erase_once(UserService(log, stores, dead_letters=letters), "victim")
    good = make_event("message", T0, event_id="g1", user_id="victim")
    log.append([("victim", b'{"user_id": "victim", "text": "mine"}'), ("bystander", b"{")])
    append(log, [good])
    worker = StreamWorker(log, stores, settings, dead_letters=letters)
    if when == "before-the-commit":
        real_apply = worker._apply

        def apply_then_erase(*args: Any) -> Any:
            done = real_apply(*args)
            erase()
            return done

        monkeypatch.setattr(worker, "_apply", apply_then_erase)
    else:
        real_put = letters.put

        def erase_then_put(batch: Any) -> None:
            erase()  # the erasure found no letter; the put comes after it
            real_put(batch)

        monkeypatch.setattr(letters, "put", erase_then_put)
    drain(worker)
    worker.close()
    assert [letter.key for letter in letters.list()] == ["bystander"]
    assert lag(log, settings) == 0
