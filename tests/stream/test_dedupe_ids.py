"""The stream worker writes only what changed of a state's dedupe ids (store/state_blob.py):
across many batches, with ids forgotten below the cut, the stored ids stay those of the state,
and a worker that reads them back (a restart) still knows every event it applied."""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from tailorbot.config import Settings
from tailorbot.features.params import FeatureParams
from tailorbot.features.state import cut_of, recompute
from tailorbot.log import open_log
from tailorbot.store import open_stores
from tailorbot.store.base import DedupeDelta
from tailorbot.stream.worker import StreamWorker
from tests.helpers import REDIS_URL, redis_namespace
from tests.stream.eventgen import DAY, T0, make_event
from tests.stream.test_worker import append, drain

USERS = 2


def history(n: int, days: float, seed: int) -> list[dict]:
    """``n`` events of :data:`USERS` users over ``days`` days, in time order: more than the
    30 days a state keeps, so ids are forgotten on the way."""
    rng = random.Random(seed)
    return [
        make_event(
            rng.choice(("message", "rating", "article_viewed")),
            T0 + days * DAY * i / n,
            event_id=f"ev{i}",
            user_id=f"u{rng.randrange(USERS)}",
            session_id=f"s{i // 12}",
        )
        for i in range(n)
    ]


@pytest.fixture(params=["sqlite", "redis"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'store.db'}"
        return
    with ExitStack() as stack:
        yield f"{REDIS_URL}?prefix={stack.enter_context(redis_namespace())}"


def test_the_stored_ids_stay_the_states_across_batches_and_a_restart(
    tmp_path: Path, store_url: str
) -> None:
    settings = Settings(data_dir=tmp_path, partitions=2, worker_batch=40)
    log = open_log(settings.resolved_log_url(), settings.partitions)
    stores = open_stores(store_url)
    events = history(2_400, days=75, seed=3)  # each user keeps ~480 ids: apart from 256 on
    writes: list[DedupeDelta | None] = []  # each write's, as it was written
    put_many = stores.features.put_many

    def recording(records, increments=None):  # type: ignore[no-untyped-def]
        writes.extend(r.dedupe for r in records)
        return put_many(records, increments)

    stores.features.put_many = recording  # type: ignore[method-assign]
    worker = StreamWorker(log, stores, settings, member_id="w1")
    for start in range(0, len(events), 100):  # batches of one user's events, many times over
        append(log, events[start : start + 100])
        drain(worker)
        for user in (f"u{i}" for i in range(USERS)):  # each id's time is in the state, once
            stored = stores.features.get(user)
            assert (
                stored is not None and sorted(stored.state["seen"].values()) == stored.state["ts"]
            )
    worker.close()
    deltas = [w for w in writes if w is not None]
    # a user's writes are whole while their ids are few (in the record), then deltas, some
    # with a floor
    assert writes[0] is None and deltas and any(d.floor is not None for d in deltas)
    assert all(len(d.added) <= settings.worker_batch for d in deltas)
    params = FeatureParams.of(settings)
    for user in (f"u{i}" for i in range(USERS)):
        stored = stores.features.get(user)
        assert stored is not None
        ids = stored.state["seen"]
        expected = recompute([e for e in events if e["user_id"] == user], settings)
        cut = cut_of(expected, params)
        assert cut is not None and len(ids) < sum(e["user_id"] == user for e in events)
        assert {e: t for e, t in ids.items() if t > cut} == {
            e: t for e, t in expected["seen"].items() if t > cut
        }

    # a restarted worker reads the ids back: every event sent again is a duplicate or late
    again = StreamWorker(log, open_stores(store_url), settings, member_id="w2")
    redelivered = events[-300:]
    append(log, redelivered)
    drain(again)
    assert again.counts["applied"] == 0
    assert again.counts["duplicate"] + again.counts["late"] == len(redelivered)
    again.close()
    again.stores.close()
    stores.close()
    log.close()


def test_a_record_the_fence_refused_is_not_kept_and_its_ids_stay_whole(
    tmp_path: Path, store_url: str
) -> None:
    """Another writer's newer record (a stale member that got ahead, then died before its
    commit) refuses this worker's write: the worker must not go on from its own state with
    deltas, over a record whose ids it does not know (in the blob of the other write)."""
    settings = Settings(data_dir=tmp_path, partitions=1, worker_batch=500)
    log = open_log(settings.resolved_log_url(), settings.partitions)
    stores = open_stores(store_url)
    events = [e for e in history(2_400, days=20, seed=5) if e["user_id"] == "u0"]
    worker = StreamWorker(log, stores, settings, member_id="w1")
    append(log, events[:400])  # past APART_AT: the ids go apart, and the state is cached
    drain(worker)
    assert "u0" in worker._states and stores.features.get("u0").dedupe is not None  # type: ignore[union-attr]
    # the other writer: far ahead in offsets, with a few ids in its blob
    other = stores.features.get("u0")
    assert other is not None
    other.state["seen"] = dict(list(other.state["seen"].items())[:10])
    other.offset, other.dedupe = 10_000, None
    assert stores.features.put_many([other]) == {"u0"}
    append(log, events[400:450])
    drain(worker)  # refused by the fence: not kept
    assert "u0" not in worker._states
    append(log, events[450:500])
    drain(worker)  # read from the store again: its ids are the other record's, whole
    stored = stores.features.get("u0")
    assert stored is not None and stored.offset == 10_000
    assert stored.state["seen"] == other.state["seen"]
    worker.close()
    stores.close()
    log.close()
