"""Shared test helpers (import as `from tests.helpers import require_server`)."""

from __future__ import annotations

import contextlib
import functools
import os
import socket
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

import httpx
import numpy as np
import pytest

from tailorbot.metrics import Metrics
from tailorbot.models.bandit.base import ARM_PREFIX
from tailorbot.store.base import CounterStore, VectorDelta
from tailorbot.telemetry.siblings import SiblingExposition, Siblings

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def server_up(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def require_server(name: str, host: str, port: int) -> None:
    """Skip when a backend server is down on a laptop; fail under CI=true (never skip there)."""
    if server_up(host, port):
        return
    message = f"{name} is not reachable on {host}:{port}"
    if IN_CI:
        pytest.fail(message + " (CI=true: backend tests never skip; .ci/run starts the servers)")
    pytest.skip(message)


REDIS_URL = "redis://127.0.0.1:6379/0"
POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"


@contextmanager
def redis_namespace() -> Iterator[str]:
    """A fresh key prefix on the shared Redis server (which is never flushed); every key under
    it is deleted afterwards. Skips (fails under CI) when Redis is down."""
    import redis

    require_server("redis", "127.0.0.1", 6379)
    prefix = f"tbtest-{uuid.uuid4().hex[:12]}"
    try:
        yield prefix
    finally:
        client = redis.Redis.from_url(REDIS_URL)
        keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
        if keys:
            client.delete(*keys)
        client.close()


def wait_until(condition: Callable[[], bool], what: str, limit_s: float = 10.0) -> None:
    """Poll ``condition`` until true; the limit only stops a hung test (no timing assertion)."""
    stop = time.monotonic() + limit_s
    while not condition():
        if time.monotonic() > stop:
            pytest.fail(f"gave up waiting for {what}")
        time.sleep(0.02)


@functools.cache
def http() -> httpx.Client:
    """One client for requests to the servers that tests start: like ``httpx.get``, a new
    connection per request (no keep-alive: with ``--workers N`` either process may accept
    it), without ``httpx.get``'s new client per call, whose TLS context alone cost ~30 ms of
    CPU: a readiness poll spent half a core of a 2-core machine on them while the server it
    waited for started."""
    return httpx.Client(timeout=30, limits=httpx.Limits(max_keepalive_connections=0))


def listening_sockets(port: int | None = None) -> list[tuple[str, str, int]]:
    """(local address as /proc writes it: hex, the IPv4 ones 8 digits; socket inode; port)
    of each socket listening on TCP ``port`` (None: on any), from Linux's /proc/net/tcp and
    tcp6."""
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:  # no IPv6, or no /proc
            continue
        for line in lines:
            fields = line.split()
            address, hex_port = fields[1].rsplit(":", 1)
            listening = int(hex_port, 16)
            if fields[3] == "0A" and port in (None, listening):  # 0A: LISTEN
                found.append((address, fields[9], listening))
    return found


def socket_inodes(pid: int) -> set[str]:
    """The inodes of the sockets process ``pid`` holds (Linux /proc; none once it is gone)."""
    inodes = set()
    with contextlib.suppress(OSError):  # the process may be gone
        for fd in os.listdir(f"/proc/{pid}/fd"):
            with contextlib.suppress(OSError):
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
                if target.startswith("socket:["):
                    inodes.add(target[len("socket:[") : -1])
    return inodes


def closed_port() -> int:
    """A local TCP port nothing listens on (to test the unreachable-server paths)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def read_siblings(folder: Path, timeout_s: float = 5.0) -> Siblings:
    """What another server process's ``/metrics`` reads in ``folder`` (its socket made and
    closed around the read: afterwards it counts among the ended processes, with zeros)."""
    reader = SiblingExposition(folder, Metrics().render)
    try:
        return reader.read(timeout_s)
    finally:
        reader.close()


@contextmanager
def silent_sibling(folder: Path) -> Iterator[str]:
    """A server process of ``serve --workers N`` that hangs, in the siblings ``folder``: its
    socket accepts connections and never answers. Yields its name (what a 503 names)."""
    name = f"{os.getpid()}-1"
    silent = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        silent.bind(str(folder / f"{name}.sock"))
        silent.listen(8)
        yield name
    finally:
        silent.close()


def bandit_updates(counters: CounterStore, namespace: str) -> dict[str, float]:
    """Each arm's number of updates in a bandit's shared statistics (the first value of its
    packed vector, ``arm/<arm>``; see tailorbot.models.bandit.base)."""
    return {
        key.removeprefix(ARM_PREFIX): float(vector[0])
        for key, vector in counters.vectors(namespace).items()
        if key.startswith(ARM_PREFIX)
    }


def packed_statistics(store: CounterStore, namespace: str) -> dict[str, bytes]:
    """A bandit's shared statistics as the bytes of each arm's packed vector (comparable)."""
    return {arm: vector.tobytes() for arm, vector in store.vectors(namespace).items()}


def per_entry(statistics: dict[str, np.ndarray], dim: int) -> dict[str, float]:
    """Packed statistics as one counter an entry, as stores before the packed layout hold
    them (``arm/<arm>/n``, ``arm/<arm>/b/<i>``, ``arm/<arm>/A/<i>/<j>``, zeros left out)."""
    out: dict[str, float] = {}
    rows, cols = np.triu_indices(dim)
    for key, packed in statistics.items():
        out[f"{key}/n"] = float(packed[0])
        out.update({f"{key}/b/{i}": float(v) for i, v in enumerate(packed[1 : 1 + dim]) if v})
        for i, j, v in zip(rows.tolist(), cols.tolist(), packed[1 + dim :].tolist(), strict=True):
            if v:
                out[f"{key}/A/{i}/{j}"] = v
    return out


class CountedReads(CounterStore):
    """A real counter store whose reads of counters and vectors are counted, and which
    keeps no stamps (``stamps``: the interface's None) unless ``stamped``."""

    def __init__(self, store: CounterStore, stamped: bool = True) -> None:
        self.store = store
        self.stamped = stamped
        self.reads = 0

    def ping(self) -> None:
        self.store.ping()

    def increment(self, namespace: str, deltas: Mapping[str, float]) -> None:
        self.store.increment(namespace, deltas)

    def counters(self, namespace: str) -> dict[str, float]:
        self.reads += 1
        return self.store.counters(namespace)

    def add_vectors(self, namespace: str, deltas: Mapping[str, VectorDelta]) -> None:
        self.store.add_vectors(namespace, deltas)

    def vectors(self, namespace: str) -> dict[str, np.ndarray]:
        self.reads += 1
        return self.store.vectors(namespace)

    def stamps(self, namespaces: Sequence[str]) -> tuple[int, ...] | None:
        return self.store.stamps(namespaces) if self.stamped else None
