"""One behaviour suite for every backend, the way Feast runs its universal tests.

A backend joins the suite with one line in :data:`LOG_FACTORIES` or :data:`STORE_FACTORIES`.
A *factory* takes pytest's ``request`` (to reach other fixtures with
``request.getfixturevalue`` or add finalizers) and the test's ``tmp_path``, and returns an
*opener*: a callable that opens — and, called again, reopens — the same fresh storage that
no other test sees. Log openers take ``partitions`` (default 4) and ``session_timeout``
(seconds, default 10). A factory for a server backend calls
``tests.helpers.require_server`` first (skip on a laptop, fail under CI=true) and cleans up
after itself. The fixtures close whatever their openers opened.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from tailorbot.log.base import EventLog
from tailorbot.store.base import OnlineStore
from tests.helpers import REDIS_URL, redis_namespace
from tests.integration.kafka_broker import kafka_bootstrap, kafka_log  # noqa: F401 (fixture)

LogOpener = Callable[..., EventLog]  # (partitions=4, session_timeout=10.0) -> EventLog
StoreOpener = Callable[[], OnlineStore]


def sqlite_log(request: pytest.FixtureRequest, tmp_path: Path) -> LogOpener:
    from tailorbot.log.sqlite import SqliteEventLog

    url = f"sqlite:///{tmp_path / 'log.db'}"

    def open_log(partitions: int = 4, session_timeout: float = 10.0) -> EventLog:
        return SqliteEventLog.from_url(url, partitions=partitions, session_timeout=session_timeout)

    return open_log


def sqlite_store(request: pytest.FixtureRequest, tmp_path: Path) -> StoreOpener:
    from tailorbot.store.sqlite import SqliteOnlineStore

    url = f"sqlite:///{tmp_path / 'store.db'}"
    return lambda: SqliteOnlineStore.from_url(url)


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
    from tailorbot.store.redis import RedisOnlineStore

    url = f"{REDIS_URL}?prefix={redis_prefix(request)}"
    return lambda: RedisOnlineStore.from_url(url)


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
def open_online_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreOpener]:
    """Opens (again) this test's store; ``online_store`` is its first opening."""
    opener = STORE_FACTORIES[request.param](request, tmp_path)
    opened: list[OnlineStore] = []

    def open_tracked() -> OnlineStore:
        store = opener()
        opened.append(store)
        return store

    yield open_tracked
    for store in reversed(opened):
        store.close()


@pytest.fixture
def online_store(open_online_store: StoreOpener) -> OnlineStore:
    return open_online_store()
