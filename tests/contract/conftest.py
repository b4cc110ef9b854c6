"""One behaviour suite for every backend, the way Feast runs its universal tests.

A backend joins the suite with one line in :data:`LOG_FACTORIES`, :data:`STORE_FACTORIES` or
:data:`DEAD_LETTER_FACTORIES`.
The online-store suites (one file per interface: features, profiles, decisions, counters)
each run against every backend in :data:`STORE_FACTORIES`.
A *factory* takes pytest's ``request`` (to reach other fixtures with
``request.getfixturevalue`` or add finalizers) and the test's ``tmp_path``, and returns an
*opener*: a callable that opens — and, called again, reopens — the same fresh storage that
no other test sees. Store openers return the backend's :class:`Stores`; log openers take
``partitions`` (default 4) and ``session_timeout`` (seconds, default 10). A factory for a
server backend calls ``tests.helpers.require_server`` first (skip on a laptop, fail under
CI=true) and cleans up
after itself. The fixtures close whatever their openers opened.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from tailorbot.dlq import DeadLetterStore, open_dead_letters
from tailorbot.log.base import EventLog
from tailorbot.store.base import (
    CounterStore,
    DecisionStore,
    FeatureRecord,
    FeatureStore,
    ProfileStore,
    Stores,
)
from tests.helpers import REDIS_URL, redis_namespace
from tests.integration.kafka_broker import kafka_bootstrap, kafka_log  # noqa: F401 (fixture)

LogOpener = Callable[..., EventLog]  # (partitions=4, session_timeout=10.0) -> EventLog
StoreOpener = Callable[[], Stores]


def sqlite_log(request: pytest.FixtureRequest, tmp_path: Path) -> LogOpener:
    from tailorbot.log.sqlite import SqliteEventLog

    url = f"sqlite:///{tmp_path / 'log.db'}"

    def open_log(partitions: int = 4, session_timeout: float = 10.0) -> EventLog:
        return SqliteEventLog.from_url(url, partitions=partitions, session_timeout=session_timeout)

    return open_log


def sqlite_store(request: pytest.FixtureRequest, tmp_path: Path) -> StoreOpener:
    from tailorbot.store.sqlite import open_stores

    url = f"sqlite:///{tmp_path / 'store.db'}"
    return lambda: open_stores(url)


def redis_prefix(request: pytest.FixtureRequest) -> str:
    """A fresh key prefix on the shared Redis (require_server first); its keys go afterwards."""
    cleanup = ExitStack()
    prefix = cleanup.enter_context(redis_namespace())
    request.addfinalizer(cleanup.close)
    return prefix


def redis_log(request: pytest.FixtureRequest, tmp_path: Path) -> LogOpener:
    from tailorbot.log.redis_streams import RedisStreamsEventLog

    url = f"{REDIS_URL}?prefix={redis_prefix(request)}"

    def open_log(partitions: int = 4, session_timeout: float = 10.0) -> EventLog:
        return RedisStreamsEventLog.from_url(
            url, partitions=partitions, session_timeout=session_timeout
        )

    return open_log


def redis_store(request: pytest.FixtureRequest, tmp_path: Path) -> StoreOpener:
    from tailorbot.store.redis import open_stores

    url = f"{REDIS_URL}?prefix={redis_prefix(request)}"
    return lambda: open_stores(url)


# Backend name (the test id) -> factory. Add a backend here; every contract test runs on it.
LOG_FACTORIES: dict[str, Callable[[pytest.FixtureRequest, Path], LogOpener]] = {
    "sqlite": sqlite_log,
    "redis": redis_log,
    "kafka": kafka_log,
}
STORE_FACTORIES: dict[str, Callable[[pytest.FixtureRequest, Path], StoreOpener]] = {
    "sqlite": sqlite_store,
    "redis": redis_store,
}


@pytest.fixture(params=sorted(LOG_FACTORIES))
def open_event_log(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[LogOpener]:
    """Opens (again) this test's log; ``event_log`` is its first opening."""
    opener = LOG_FACTORIES[request.param](request, tmp_path)
    opened: list[EventLog] = []

    def open_tracked(**options: float) -> EventLog:
        log = opener(**options)
        opened.append(log)
        return log

    yield open_tracked
    for log in reversed(opened):
        log.close()


@pytest.fixture
def event_log(open_event_log: LogOpener) -> EventLog:
    return open_event_log()


@pytest.fixture(params=sorted(STORE_FACTORIES))
def open_online_stores(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreOpener]:
    """Opens (again) this test's stores; ``online_stores`` is their first opening."""
    opener = STORE_FACTORIES[request.param](request, tmp_path)
    opened: list[Stores] = []

    def open_tracked() -> Stores:
        stores = opener()
        opened.append(stores)
        return stores

    yield open_tracked
    for stores in reversed(opened):
        stores.close()


@pytest.fixture
def online_stores(open_online_stores: StoreOpener) -> Stores:
    return open_online_stores()


@pytest.fixture
def feature_store(online_stores: Stores) -> FeatureStore:
    return online_stores.features


@pytest.fixture
def profile_store(online_stores: Stores) -> ProfileStore:
    return online_stores.profiles


@pytest.fixture
def decision_store(online_stores: Stores) -> DecisionStore:
    return online_stores.decisions


@pytest.fixture
def counter_store(online_stores: Stores) -> CounterStore:
    return online_stores.counters


def record(user_id: str, offset: int, partition: int = 0, **state: object) -> FeatureRecord:
    """A feature record at ``offset`` whose state is ``state``."""
    event_time = 1_700_000_000.0 + offset
    return FeatureRecord(user_id, dict(state), partition, offset, event_time, time.time())


def run_threads(count: int, work: Callable[[int], None]) -> None:
    threads = [threading.Thread(target=work, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


DeadLetterOpener = Callable[[], DeadLetterStore]


def sqlite_dead_letters(request: pytest.FixtureRequest, tmp_path: Path) -> DeadLetterOpener:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    return lambda: open_dead_letters(url)


def redis_dead_letters(request: pytest.FixtureRequest, tmp_path: Path) -> DeadLetterOpener:
    url = f"{REDIS_URL}?prefix={redis_prefix(request)}"
    return lambda: open_dead_letters(url)


DEAD_LETTER_FACTORIES: dict[str, Callable[[pytest.FixtureRequest, Path], DeadLetterOpener]] = {
    "sqlite": sqlite_dead_letters,
    "redis": redis_dead_letters,
}


@pytest.fixture(params=sorted(DEAD_LETTER_FACTORIES))
def dead_letters(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[DeadLetterStore]:
    store = DEAD_LETTER_FACTORIES[request.param](request, tmp_path)()
    yield store
    store.close()
