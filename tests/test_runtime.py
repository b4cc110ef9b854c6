from __future__ import annotations

import copy
from pathlib import Path

import pytest

from tailorbot.config import Settings
from tailorbot.errors import InvalidInput, NotFound, Overloaded, PayloadTooLarge, Unavailable
from tailorbot.events.codec import decode_event
from tailorbot.events.profile import UserProfile
from tailorbot.runtime import Runtime
from tailorbot.stream.worker import StreamWorker
from tests.api.support import event, message, wait_until

UNREACHABLE = "redis://127.0.0.1:1/0?connect_timeout=0.5&socket_timeout=0.5"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings.load(data_dir=tmp_path, run_worker_in_server=False)


@pytest.fixture
def runtime(settings: Settings):
    built = Runtime(settings)
    yield built
    built.stop()


def _apply_all(runtime: Runtime) -> None:
    """Run a real stream worker until the group has nothing left to apply."""
    worker = StreamWorker(runtime.log, runtime.stores, runtime.settings)

    def caught_up() -> bool:
        worker.run_once()
        return sum(runtime.log.lag(runtime.settings.consumer_group).values()) == 0

    try:
        wait_until(caught_up, "the worker to catch up")
    finally:
        worker.close()


def test_ingest_redacts_encodes_and_appends_in_order(runtime: Runtime) -> None:
    raw = [message("u1", "I'm at 10.0.0.9"), event("rating", "u1", score=4)]
    original = copy.deepcopy(raw)
    result = runtime.ingestion.ingest(raw)
    assert raw == original, "the caller's dicts are not modified"
    assert (result.accepted, result.rejected) == (2, 0)
    (p0, o0), (p1, o1) = [(r["partition"], r["offset"]) for r in result.results]
    assert p0 == p1 == runtime.log.partition_for("u1") and o1 == o0 + 1
    stored = [decode_event(r.value) for r in runtime.log.read(p0, o0, 10)]
    assert stored[0]["text"] == "I'm at <IP>" and stored[1]["score"] == 4


def test_all_or_nothing_and_partial(runtime: Runtime) -> None:
    batch = [message("u1"), message("u1", role="robot")]
    with pytest.raises(InvalidInput) as caught:
        runtime.ingestion.ingest(batch)
    assert [p.as_dict() for p in caught.value.problems] == [
        {"index": 1, "field": "role", "reason": "Input should be 'customer', 'bot' or 'agent'"}
    ]
    assert sum(runtime.log.end_offsets().values()) == 0
    result = runtime.ingestion.ingest(batch, partial=True)
    assert (result.accepted, result.rejected) == (1, 1)
    assert result.results[1] == {
        "index": 1,
        "status": "rejected",
        "errors": [{"field": "role", "reason": "Input should be 'customer', 'bot' or 'agent'"}],
    }
    assert sum(runtime.log.end_offsets().values()) == 1


def test_too_long_text_wins_over_invalid(runtime: Runtime) -> None:
    long_text = "x" * (runtime.settings.max_text_chars + 1)
    with pytest.raises(PayloadTooLarge) as caught:
        runtime.ingestion.ingest([message(text=long_text), message(role="robot")])
    assert {(p.index, p.field) for p in caught.value.problems} == {(0, "text"), (1, "role")}


def test_backpressure(tmp_path: Path) -> None:
    settings = Settings.load(data_dir=tmp_path, run_worker_in_server=False, backpressure_max_lag=1)
    first = Runtime(settings)
    first.ingestion.ingest([message(), message()])
    first.stop()
    second = Runtime(settings)  # a fresh lag cache sees the lag at once
    try:
        with pytest.raises(Overloaded) as caught:
            second.ingestion.ingest([message()])
        assert caught.value.retry_after == 1 and caught.value.http_status == 429
        _apply_all(second)
        second.ingestion._lag_read_at = float("-inf")  # skip the 100 ms cache instead of sleeping
        assert second.ingestion.ingest([message()]).accepted == 1
    finally:
        second.stop()


def test_unreachable_backends_are_unavailable(tmp_path: Path) -> None:
    runtime = Runtime(
        Settings.load(data_dir=tmp_path, run_worker_in_server=False, store_url=UNREACHABLE)
    )
    try:
        with pytest.raises(Unavailable, match="online store unavailable") as caught:
            runtime.users.features("u1")
        assert caught.value.http_status == 503 and caught.value.retry_after == 1
        report = runtime.health.readiness()
        assert report["ready"] is False and report["checks"]["log"] == "ok"
        assert report["checks"]["store"].startswith("unreachable")
    finally:
        runtime.stop()


def test_features_profile_consent_and_erasure(runtime: Runtime) -> None:
    with pytest.raises(NotFound):
        runtime.users.features("u1")
    runtime.users.put_profile("u1", UserProfile(tier="gold"))
    runtime.ingestion.ingest([message("u1", intent="card_arrival"), message("u2")])
    _apply_all(runtime)
    view = runtime.users.features("u1")
    assert view["user_id"] == "u1" and view["features"]["recent_intents"] == ["card_arrival"]
    assert view["freshness"]["partition"] == runtime.log.partition_for("u1")

    erased: list[str] = []
    runtime.users.on_erase(erased.append)
    runtime.users.put_profile("u1", UserProfile(tier="gold", consent={"personalization": False}))
    with pytest.raises(NotFound):
        runtime.users.features("u1")
    assert runtime.stores.profiles.get("u1")["consent"]["personalization"] is False
    assert erased == ["u1"]

    runtime.users.erase_user("u2")
    assert erased == ["u1", "u2"]
    with pytest.raises(NotFound):
        runtime.users.features("u2")
    assert all(r.key != "u2" for r in runtime.log.read_all(runtime.log.partition_for("u2")))


def test_background_worker_and_idempotent_stop(tmp_path: Path) -> None:
    runtime = Runtime(Settings.load(data_dir=tmp_path, run_worker_in_server=True))
    runtime.start_workers()
    runtime.start_workers()  # a second call does not start a second worker
    assert runtime.health.thread_state("worker") == "running"
    runtime.ingestion.ingest([message("u9")])
    wait_until(lambda: _has_features(runtime, "u9"), "the background worker")
    runtime.stop()
    runtime.stop()
    assert runtime.health.thread_state("worker") == "not running in this process"


def _has_features(runtime: Runtime, user_id: str) -> bool:
    try:
        runtime.users.features(user_id)
    except NotFound:
        return False
    return True
