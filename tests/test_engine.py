from __future__ import annotations

import copy
from pathlib import Path

import pytest

from tailorbot.config import Settings
from tailorbot.engine import Engine
from tailorbot.errors import InvalidInput, NotFound, Overloaded, PayloadTooLarge, Unavailable
from tailorbot.events.codec import decode_event
from tailorbot.events.profile import UserProfile
from tailorbot.stream.worker import StreamWorker
from tests.api.support import event, message, wait_until

UNREACHABLE = "redis://127.0.0.1:1/0?connect_timeout=0.5&socket_timeout=0.5"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings.load(data_dir=tmp_path, run_worker_in_server=False)


@pytest.fixture
def engine(settings: Settings):
    built = Engine(settings)
    yield built
    built.stop()


def _apply_all(engine: Engine) -> None:
    """Run a real stream worker until the group has nothing left to apply."""
    worker = StreamWorker(engine.log, engine.store, engine.settings)

    def caught_up() -> bool:
        worker.run_once()
        return sum(engine.log.lag(engine.settings.consumer_group).values()) == 0

    try:
        wait_until(caught_up, "the worker to catch up")
    finally:
        worker.close()


def test_ingest_redacts_encodes_and_appends_in_order(engine: Engine) -> None:
    raw = [message("u1", "I'm at 10.0.0.9"), event("rating", "u1", score=4)]
    original = copy.deepcopy(raw)
    result = engine.ingest(raw)
    assert raw == original, "the caller's dicts are not modified"
    assert (result.accepted, result.rejected) == (2, 0)
    (p0, o0), (p1, o1) = [(r["partition"], r["offset"]) for r in result.results]
    assert p0 == p1 == engine.log.partition_for("u1") and o1 == o0 + 1
    stored = [decode_event(r.value) for r in engine.log.read(p0, o0, 10)]
    assert stored[0]["text"] == "I'm at <IP>" and stored[1]["score"] == 4


def test_all_or_nothing_and_partial(engine: Engine) -> None:
    batch = [message("u1"), message("u1", role="robot")]
    with pytest.raises(InvalidInput) as caught:
        engine.ingest(batch)
    assert [p.as_dict() for p in caught.value.problems] == [
        {"index": 1, "field": "role", "reason": "Input should be 'customer', 'bot' or 'agent'"}
    ]
    assert sum(engine.log.end_offsets().values()) == 0
    result = engine.ingest(batch, partial=True)
    assert (result.accepted, result.rejected) == (1, 1)
    assert result.results[1] == {
        "index": 1,
        "status": "rejected",
        "errors": [{"field": "role", "reason": "Input should be 'customer', 'bot' or 'agent'"}],
    }
    assert sum(engine.log.end_offsets().values()) == 1


def test_too_long_text_wins_over_invalid(engine: Engine) -> None:
    long_text = "x" * (engine.settings.max_text_chars + 1)
    with pytest.raises(PayloadTooLarge) as caught:
        engine.ingest([message(text=long_text), message(role="robot")])
    assert {(p.index, p.field) for p in caught.value.problems} == {(0, "text"), (1, "role")}


def test_backpressure(tmp_path: Path) -> None:
    settings = Settings.load(data_dir=tmp_path, run_worker_in_server=False, backpressure_max_lag=1)
    first = Engine(settings)
    first.ingest([message(), message()])
    first.stop()
    second = Engine(settings)  # a fresh lag cache sees the lag at once
    try:
        with pytest.raises(Overloaded) as caught:
            second.ingest([message()])
        assert caught.value.retry_after == 1 and caught.value.http_status == 429
        _apply_all(second)
        second._lag_read_at = float("-inf")  # skip the 100 ms cache instead of sleeping
        assert second.ingest([message()]).accepted == 1
    finally:
        second.stop()


def test_unreachable_backends_are_unavailable(tmp_path: Path) -> None:
    engine = Engine(
        Settings.load(data_dir=tmp_path, run_worker_in_server=False, store_url=UNREACHABLE)
    )
    try:
        with pytest.raises(Unavailable, match="online store unavailable") as caught:
            engine.features("u1")
        assert caught.value.http_status == 503 and caught.value.retry_after == 1
        report = engine.readiness()
        assert report["ready"] is False and report["checks"]["log"] == "ok"
        assert report["checks"]["store"].startswith("unreachable")
    finally:
        engine.stop()


def test_features_profile_consent_and_erasure(engine: Engine) -> None:
    with pytest.raises(NotFound):
        engine.features("u1")
    engine.put_profile("u1", UserProfile(tier="gold"))
    engine.ingest([message("u1", intent="card_arrival"), message("u2")])
    _apply_all(engine)
    view = engine.features("u1")
    assert view["user_id"] == "u1" and view["features"]["recent_intents"] == ["card_arrival"]
    assert view["freshness"]["partition"] == engine.log.partition_for("u1")

    erased: list[str] = []
    engine.on_erase(erased.append)
    engine.put_profile("u1", UserProfile(tier="gold", consent={"personalization": False}))
    with pytest.raises(NotFound):
        engine.features("u1")
    assert engine.store.get_profile("u1")["consent"]["personalization"] is False
    assert erased == ["u1"]

    engine.erase_user("u2")
    assert erased == ["u1", "u2"]
    with pytest.raises(NotFound):
        engine.features("u2")
    assert all(r.key != "u2" for r in engine.log.read_all(engine.log.partition_for("u2")))


def test_background_worker_and_idempotent_stop(tmp_path: Path) -> None:
    engine = Engine(Settings.load(data_dir=tmp_path, run_worker_in_server=True))
    engine.start_worker()
    engine.start_worker()  # a second call does not start a second worker
    assert engine.worker_state() == "running"
    engine.ingest([message("u9")])
    wait_until(lambda: _has_features(engine, "u9"), "the background worker")
    engine.stop()
    engine.stop()
    assert engine.worker_state() == "not running in this process"


def _has_features(engine: Engine, user_id: str) -> bool:
    try:
        engine.features(user_id)
    except NotFound:
        return False
    return True
