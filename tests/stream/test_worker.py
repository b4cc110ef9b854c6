from __future__ import annotations

import gc
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from tailorbot.config import Settings
from tailorbot.events.codec import event_epoch
from tailorbot.features.state import recompute
from tailorbot.features.view import feature_view
from tailorbot.log import EventLog, open_log
from tailorbot.metrics import Metrics
from tailorbot.models.recommend.collaborative import NAMESPACES
from tailorbot.store import Stores, open_stores
from tailorbot.store.base import StoreError
from tailorbot.stream.worker import StreamWorker
from tests.stream.eventgen import DAY, INTENTS, T0, make_event

ROOT = Path(__file__).resolve().parents[2]
KINDS = ("message", "message", "rating", "resolution", "article_viewed", "handoff")


def synthetic(n: int, users: int, seed: int) -> list[dict]:
    """``n`` events of ``users`` users over 10 days, in time order."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        u = rng.randrange(users)
        kind = rng.choice(KINDS)
        fields: dict = {}
        if kind == "message":
            fields = {"intent": rng.choice(INTENTS), "role": rng.choice(("customer", "bot"))}
        elif kind == "rating":
            fields = {"score": rng.randint(1, 5)}
        elif kind == "resolution":
            fields = {"resolved": rng.random() < 0.6, "article_id": f"kb-{rng.randrange(5)}"}
        ts = T0 + 10 * DAY * i / n
        out.append(
            make_event(
                kind, ts, event_id=f"ev{i}", user_id=f"u{u}", session_id=f"u{u}-{i // 40}", **fields
            )
        )
    return out


def arrival_order(events: list[dict], lateness: float, seed: int, redeliver: int = 0) -> list[dict]:
    """Shuffled within ``lateness``, with ``redeliver`` events sent twice (same event_id)."""
    rng = random.Random(seed)
    copies = events + [dict(rng.choice(events)) for _ in range(redeliver)]
    return sorted(copies, key=lambda e: event_epoch(e) + rng.random() * lateness)


def append(log: EventLog, events: list[dict]) -> None:
    items = [(e["user_id"], orjson.dumps({**e, "ingested_at": time.time()})) for e in events]
    for lo in range(0, len(items), 1000):
        log.append(items[lo : lo + 1000])


def drain(worker: StreamWorker) -> int:
    handled = 0
    while n := worker.run_once():
        handled += n
    return handled


def run_until_caught_up(worker: StreamWorker, log: EventLog, settings: Settings) -> None:
    """``worker.run`` (which retries failed batches) in a thread until the lag is 0; close."""
    stop = threading.Event()
    thread = threading.Thread(target=worker.run, args=(stop,))
    thread.start()
    deadline = time.monotonic() + 60
    while sum(log.lag(settings.consumer_group).values()) and time.monotonic() < deadline:
        time.sleep(0.05)
    stop.set()
    thread.join()
    worker.close()


def assert_matches_recompute(stores: Stores, events: list[dict], settings: Settings) -> None:
    by_user: dict[str, list[dict]] = {}
    for e in events:
        by_user.setdefault(e["user_id"], []).append(e)
    for user, evs in by_user.items():
        record = stores.features.get(user)
        assert record is not None, user
        now = max(event_epoch(e) for e in evs) + 60
        got = feature_view(record, None, now)
        expected = feature_view(
            record.__class__(user, recompute(evs, settings), 0, 0, 0, 0), None, now
        )
        for key in ("state_event_time", "state_updated_at"):
            got.pop(key), expected.pop(key)
        assert got == expected, user


@pytest.fixture
def backends(tmp_path: Path) -> Iterator[tuple[EventLog, Stores, Settings]]:
    settings = Settings(data_dir=tmp_path, partitions=4, worker_batch=150)
    log = open_log(settings.resolved_log_url(), settings.partitions)
    stores = open_stores(settings.resolved_store_url())
    yield log, stores, settings
    log.close()
    stores.close()


def test_worker_applies_everything_once_and_commits(backends) -> None:
    log, stores, settings = backends
    events = synthetic(1500, users=12, seed=1)
    append(log, arrival_order(events, settings.lateness_s, seed=2, redeliver=40))
    metrics = Metrics()
    worker = StreamWorker(log, stores, settings, metrics=metrics, member_id="w1")
    assert drain(worker) == 1540
    worker.close()
    assert sum(log.lag(settings.consumer_group).values()) == 0
    assert worker.counts["applied"] == 1500 and worker.counts["duplicate"] == 40
    sample = metrics.registry.get_sample_value
    assert sample("tailorbot_events_applied_total") == 1500
    assert sample("tailorbot_events_skipped_total", {"reason": "duplicate"}) == 40
    assert sample("tailorbot_event_to_feature_seconds_count") == 1500
    assert sample("tailorbot_processor_lag", {"partition": "0"}) is not None
    assert_matches_recompute(stores, events, settings)
    record = stores.features.get("u0")
    assert record is not None and record.event_time == record.state["newest"]


def test_users_without_consent_get_no_state(backends) -> None:
    log, stores, settings = backends
    stores.profiles.put("u1", {"consent": {"personalization": False}})
    events = synthetic(300, users=3, seed=3)
    append(log, events)
    worker = StreamWorker(log, stores, settings)
    assert drain(worker) == 300
    assert stores.features.get("u1") is None and stores.features.get("u0") is not None
    assert worker.counts["no_consent"] == sum(e["user_id"] == "u1" for e in events)
    assert sum(log.lag(settings.consumer_group).values()) == 0


def test_records_below_the_erasure_watermark_are_dropped(backends) -> None:
    log, stores, settings = backends
    before = [make_event("message", T0 + i, event_id=f"a{i}", user_id="gone") for i in range(5)]
    append(log, before)
    partition = log.partition_for("gone")
    # events still in flight; the erasure happens at T0 + 6, after the events before it
    stores.features.erase("gone", partition, log.end_offsets()[partition], erased_at=T0 + 6)
    after = [make_event("rating", T0 + 10 + i, event_id=f"b{i}", user_id="gone") for i in range(3)]
    append(log, after)
    worker = StreamWorker(log, stores, settings)
    drain(worker)
    assert worker.counts["erased"] == 5
    assert_matches_recompute(stores, after, settings)


def test_events_made_before_the_erasure_but_appended_after_it_are_dropped(backends) -> None:
    """A feedback (or a decision of another process) read the user before an erasure and
    appends its events after it, above the watermark: they are dated before the erasure, so
    they must not build the erased user a new record."""
    log, stores, settings = backends
    append(log, [make_event("message", T0 + i, event_id=f"a{i}", user_id="gone") for i in range(3)])
    partition = log.partition_for("gone")
    stores.features.erase("gone", partition, log.end_offsets()[partition], erased_at=T0 + 60)
    in_flight = [
        make_event("rating", T0 + 30, event_id="d1-rating", user_id="gone", score=5),
        make_event("resolution", T0 + 31, event_id="d1-resolution", user_id="gone"),
    ]
    append(log, in_flight)
    worker = StreamWorker(log, stores, settings)
    drain(worker)
    assert worker.counts["erased"] == 5
    assert stores.features.get("gone") is None
    # The user comes back later: events dated after the erasure count again.
    back = [make_event("message", T0 + 120, event_id="c1", user_id="gone")]
    append(log, back)
    drain(worker)
    assert_matches_recompute(stores, back, settings)


def test_malformed_records_are_skipped_and_the_rest_applied(backends) -> None:
    log, stores, settings = backends
    good = synthetic(50, users=2, seed=4)
    append(log, good[:20])
    log.append([("u0", b"{not json"), ("u0", orjson.dumps({"type": "message", "user_id": "u0"}))])
    append(log, good[20:])
    worker = StreamWorker(log, stores, settings)
    assert drain(worker) == 52
    assert worker.counts["malformed"] == 2 and worker.counts["applied"] == 50
    assert_matches_recompute(stores, good, settings)


def test_undecodable_records_go_to_the_dead_letters(backends) -> None:
    """With a dead-letter store, an undecodable record is kept there with the reason and the
    partition moves on past it."""
    from tailorbot.dlq import open_dead_letters

    log, stores, settings = backends
    letters = open_dead_letters(settings.resolved_store_url())
    good = synthetic(30, users=1, seed=6)  # one user: one partition
    append(log, good[:10])
    log.append([("u0", b"{not json")])
    append(log, good[10:])
    metrics = Metrics()
    worker = StreamWorker(log, stores, settings, metrics=metrics, dead_letters=letters)
    assert drain(worker) == 31
    worker.close()
    group = settings.consumer_group
    assert sum(log.lag(group).values()) == 0
    (letter,) = letters.list()
    assert (letter.group, letter.offset, letter.value) == (group, 10, b"{not json")
    assert letter.reason.startswith("undecodable")
    assert metrics.registry.get_sample_value("tailorbot_dead_letters_total", {"group": group}) == 1
    assert_matches_recompute(stores, good, settings)
    letters.close()


def test_a_failed_commit_is_retried_without_losing_or_double_counting(
    backends, monkeypatch: pytest.MonkeyPatch
) -> None:
    log, stores, settings = backends
    events = synthetic(600, users=5, seed=5)
    append(log, events)
    worker = StreamWorker(log, stores, settings, metrics=Metrics())
    consumer_class = type(log.consumer("probe", "probe"))
    real_commit = consumer_class.commit
    failures = iter([True, True])

    def flaky_commit(self, offsets):  # the stores write went through; the commit did not
        if next(failures, False):
            raise OSError("log unreachable")
        return real_commit(self, offsets)

    monkeypatch.setattr(consumer_class, "commit", flaky_commit)
    run_until_caught_up(worker, log, settings)
    assert worker.errors == 2
    assert worker.counts["applied"] == 600
    assert worker.counts["duplicate"] > 0  # the batches read again
    assert_matches_recompute(stores, events, settings)


# --- the state cache (stream/state_cache.py) ---------------------------------------------


def erase_in_store(log: EventLog, stores: Stores, user: str, at: float) -> None:
    """What DELETE /v1/users and a consent withdrawal do to the stores: record gone, and a
    watermark at the partition's end, the erasure dated ``at`` (the tests' events are dated
    in the past)."""
    partition = log.partition_for(user)
    stores.features.erase(user, partition, log.end_offsets()[partition], erased_at=at)


def test_a_cached_state_is_not_reused_once_the_user_is_erased(backends) -> None:
    log, stores, settings = backends
    old = [make_event("message", T0 + i, event_id=f"a{i}", user_id="u") for i in range(5)]
    append(log, old)
    worker = StreamWorker(log, stores, settings)
    drain(worker)
    assert "u" in worker._states  # the next batch of "u" would start from it
    erase_in_store(log, stores, "u", at=T0 + 5)
    new = [make_event("rating", T0 + 10 + i, event_id=f"b{i}", user_id="u") for i in range(3)]
    append(log, new)
    drain(worker)
    worker.close()
    assert_matches_recompute(stores, new, settings)  # the new record holds the new events only


def test_an_erased_user_who_never_returns_leaves_the_workers_memory(backends) -> None:
    log, stores, settings = backends
    append(log, [make_event("message", T0 + i, event_id=f"a{i}", user_id="u") for i in range(3)])
    worker = StreamWorker(log, stores, settings, state_cache_idle_s=0.2)
    drain(worker)
    assert "u" in worker._states
    erase_in_store(log, stores, "u", at=T0 + 5)
    idle_since = time.monotonic()
    while time.monotonic() - idle_since <= 0.2:  # nothing more of "u": only polls that wait
        worker.run_once(wait_s=0.05)
    assert "u" not in worker._states  # (close() would empty the cache anyway)
    worker.close()


def test_a_cached_state_is_not_reused_after_consent_was_withdrawn_and_given_again(
    backends,
) -> None:
    log, stores, settings = backends
    append(log, [make_event("message", T0 + i, event_id=f"a{i}", user_id="u") for i in range(4)])
    worker = StreamWorker(log, stores, settings)
    drain(worker)
    assert "u" in worker._states
    stores.profiles.put("u", {"consent": {"personalization": False}})  # as Runtime.put_profile
    erase_in_store(log, stores, "u", at=T0 + 5)
    stores.profiles.put("u", {"consent": {"personalization": False}})
    stores.profiles.put("u", {"consent": {"personalization": True}})  # no event in between
    new = [make_event("rating", T0 + 10, event_id="b0", user_id="u")]
    append(log, new)
    drain(worker)
    worker.close()
    assert_matches_recompute(stores, new, settings)


def test_a_failed_batch_drops_the_cached_states_it_touched(backends, monkeypatch) -> None:
    log, stores, settings = backends
    first = [make_event("message", T0, event_id=f"{u}0", user_id=u) for u in ("ua", "ub")]
    append(log, first)
    worker = StreamWorker(log, stores, settings)
    drain(worker)
    assert "ua" in worker._states and "ub" in worker._states
    then = [make_event("rating", T0 + 1, event_id="ua1", user_id="ua")]
    append(log, then)

    def unreachable(records: Any, increments: Any = None) -> None:
        raise StoreError("stores unreachable")

    monkeypatch.setattr(stores.features, "put_many", unreachable)
    with pytest.raises(StoreError):
        worker.run_once()  # "ua"'s cached state was updated in place, never written
    assert "ua" not in worker._states and "ub" in worker._states
    monkeypatch.undo()
    worker._leave()  # what run() does after a failed batch: the batch is read again
    drain(worker)
    worker.close()
    assert_matches_recompute(stores, first + then, settings)


def test_a_partition_another_member_moved_on_is_read_from_the_store_again(backends) -> None:
    log, stores, settings = backends
    events = synthetic(900, users=12, seed=21)
    append(log, events[:300])
    w1 = StreamWorker(log, stores, settings, member_id="w1")
    drain(w1)
    append(log, events[300:600])
    # w2 joins while w1 sits between two batches, takes partitions 1 and 3 and leaves:
    # w1 never sees its assignment change, and reads those partitions on from where it was.
    w2 = StreamWorker(log, stores, settings, member_id="w2")
    drain(w2)
    w2.close()
    append(log, events[600:])
    drain(w1)
    w1.close()
    assert w2.counts["applied"] > 0 and w1.counts["duplicate"] > 0
    assert w1.counts["applied"] + w2.counts["applied"] == 900  # nothing applied twice
    assert_matches_recompute(stores, events, settings)


def cache_scenario(tmp_path: Path, state_cache_size: int) -> dict[str, Any]:
    """Batches with re-deliveries, an erasure, a consent withdrawal, a second member coming
    and going, and a failing stores write, run to the end; what the stores holds then."""
    settings = Settings(data_dir=tmp_path, partitions=4, worker_batch=70)
    log = open_log(settings.resolved_log_url(), settings.partitions)
    stores = open_stores(settings.resolved_store_url())
    reads: list[int] = []
    get_many = stores.features.get_many
    stores.features.get_many = lambda users: reads.append(len(users)) or get_many(users)  # type: ignore[method-assign]
    events = arrival_order(synthetic(1200, users=10, seed=31), 600.0, seed=32, redeliver=60)
    w1 = StreamWorker(log, stores, settings, member_id="w1", state_cache_size=state_cache_size)
    append(log, events[:400])
    drain(w1)
    erased_at = max(event_epoch(e) for e in events[:400])
    erase_in_store(log, stores, "u3", erased_at)
    for step in ("profile", "erase", "profile"):  # a consent withdrawal (Runtime.put_profile)
        if step == "erase":
            erase_in_store(log, stores, "u4", erased_at)
        else:
            stores.profiles.put("u4", {"consent": {"personalization": False}})
    append(log, events[400:700])
    drain(w1)
    stores.profiles.put("u4", {"consent": {"personalization": True}})
    append(log, events[700:900])
    w2 = StreamWorker(log, stores, settings, member_id="w2", state_cache_size=state_cache_size)
    drain(w2)
    w2.close()
    append(log, events[900:])
    failures = iter([False, False, True])  # after w1 caught up with w2's partitions
    put_many = stores.features.put_many

    def flaky_put_many(records: Any, increments: Any = None) -> set[str]:
        if next(failures, False):
            put_many(records[: len(records) // 2])  # half of it landed
            raise StoreError("stores unreachable")
        return put_many(records, increments)

    stores.features.put_many = flaky_put_many  # type: ignore[method-assign]
    run_until_caught_up(w1, log, settings)
    users = {e["user_id"] for e in events}
    records = {u: stores.features.get(u) for u in users}
    out = {
        "records": {
            u: r and (orjson.dumps(r.state), r.partition, r.offset, r.version)
            for u, r in records.items()
        },
        "counters": {ns: stores.counters.counters(ns) for ns in NAMESPACES},
        "counts": {k: w1.counts[k] + w2.counts[k] for k in w1.counts},
        "errors": w1.errors,
        "users_read": sum(reads),
    }
    log.close()
    stores.close()
    return out


def test_the_state_cache_changes_nothing_the_store_holds(tmp_path: Path) -> None:
    uncached = cache_scenario(tmp_path / "uncached", state_cache_size=0)
    cached = cache_scenario(tmp_path / "cached", state_cache_size=100)
    assert cached["errors"] == uncached["errors"] == 1
    assert cached["users_read"] < uncached["users_read"] / 2  # the cache did answer
    for key in ("records", "counters", "counts"):
        assert cached[key] == uncached[key], key
    assert uncached["counts"]["no_consent"] > 0 and uncached["counts"]["duplicate"] > 0


def test_garbage_collection_is_paused_during_a_batch_only(backends) -> None:
    """With ``pause_gc`` (a worker process of its own; see tests/stream/test_gc.py)."""
    log, stores, settings = backends
    append(log, synthetic(20, users=2, seed=41))
    seen: list[bool] = []
    put_many = stores.features.put_many
    stores.features.put_many = lambda records, increments=None: (  # type: ignore[method-assign]
        seen.append(gc.isenabled()) or put_many(records, increments)
    )
    worker = StreamWorker(log, stores, settings, pause_gc=True)
    assert gc.isenabled()
    drain(worker)
    assert seen == [False] and gc.isenabled()
    gc.disable()  # whoever turned it off keeps it off
    try:
        append(log, synthetic(20, users=2, seed=42))
        drain(worker)
        assert not gc.isenabled()
    finally:
        gc.enable()
    worker.close()


CHILD = """
import sys, threading
from tailorbot.config import Settings
from tailorbot.log import open_log
from tailorbot.store import open_stores
from tailorbot.stream.worker import StreamWorker
settings = Settings(log_url=sys.argv[1], store_url=sys.argv[2], partitions=4, worker_batch=50)
worker = StreamWorker(open_log(settings.resolved_log_url(), settings.partitions),
                      open_stores(settings.resolved_store_url()), settings)
worker.run(threading.Event())
"""


def test_sigkilled_worker_resumes_without_losing_or_double_counting(tmp_path: Path) -> None:
    # A killed member keeps its partitions until its session times out: make that quick.
    log_url = f"sqlite:///{tmp_path}/log.db?session_timeout=0.5"
    store_url = f"sqlite:///{tmp_path}/store.db"
    settings = Settings(log_url=log_url, store_url=store_url, partitions=4, worker_batch=50)
    log = open_log(settings.resolved_log_url(), settings.partitions)
    stores = open_stores(settings.resolved_store_url())
    events = synthetic(6000, users=40, seed=6)
    append(log, arrival_order(events, settings.lateness_s, seed=7, redeliver=200))
    group, total = settings.consumer_group, 6200
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    rng = random.Random(8)
    for _ in range(5):
        child = subprocess.Popen([sys.executable, "-c", CHILD, log_url, store_url], env=env)
        start = sum(log.committed(group).values())
        deadline = time.monotonic() + 60
        while sum(log.committed(group).values()) < start + 300:
            assert child.poll() is None, "the worker died on its own"
            assert time.monotonic() < deadline, "the worker made no progress"
            time.sleep(0.005)
        time.sleep(rng.random() * 0.02)  # land anywhere in a batch
        child.send_signal(signal.SIGKILL)
        child.wait()
    done = sum(log.committed(group).values())
    assert 0 < done < total, "the kills should land mid-stream"
    worker = StreamWorker(log, stores, settings)
    deadline = time.monotonic() + 60
    while sum(log.lag(group).values()) and time.monotonic() < deadline:
        if not worker.run_once():
            time.sleep(0.05)  # until the killed members' partitions come to this one
    worker.close()
    assert sum(log.lag(group).values()) == 0
    assert worker.counts["applied"] < total  # the killed workers did part of the work
    assert_matches_recompute(stores, events, settings)
    log.close()
    stores.close()


def test_the_lag_gauge_forgets_the_partitions_a_rebalance_took(backends) -> None:
    log, stores, settings = backends
    append(log, synthetic(200, users=12, seed=5))
    metrics = Metrics()
    w1 = StreamWorker(log, stores, settings, metrics=metrics, member_id="w1")

    def shown() -> set[str]:
        (family,) = metrics.processor_lag.collect()
        return {s.labels["partition"] for s in family.samples}

    w1.run_once()
    assert shown() == {"0", "1", "2", "3"}  # it owns them all
    w2 = StreamWorker(log, stores, settings, member_id="w2")
    w2.run_once()  # joins: the group splits the partitions
    w1._lag_at = 0.0  # the gauge is refreshed every few seconds: now
    w1.run_once()
    owned = {str(p) for p in w1._join().assignment()}
    assert 0 < len(owned) < 4
    assert shown() == owned  # not the last lag of partitions w2 now reports
    w1.close()
    w2.close()
