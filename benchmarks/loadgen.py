"""An open-loop HTTP load generator (no coordinated omission).

Request *i* is due at ``start + i / rate`` whatever happened to the earlier ones; its latency is
measured from that due time (or from its start, if a timer woke it early), not from when a
connection happened to be free, so queueing in the server (or in this client) shows in the
figures instead of silently lowering the rate.
It speaks plain HTTP/1.1 with keep-alive over asyncio streams, which is lighter than a general
client and lets one core drive ~1-2k requests/s.

    result = run_load(run_open_loop("127.0.0.1", 8000, "/v1/personalize", bodies, rate=500,
                                    duration_s=20))
    print(result.summary())

The summary's ``send_lag_*`` say how late the generator started the requests: one
descheduled on a busy machine delays every request due meanwhile, and their latencies (from
the due times) then measure it, not the server. (A wait for a free connection is not in it:
that one is the server's.) ``run_load`` runs the load on uvloop, as the servers run: the
generator spends less CPU per request than on asyncio's own loop (it shares a small
machine's cores with the server measured), and its figures are not comparable with runs on
asyncio's loop to the last millisecond.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np

try:
    import uvloop
except ImportError:  # uvicorn[standard] brings it where it builds (not on Windows)
    uvloop = None

Result = TypeVar("Result")


@dataclass
class LoadResult:
    rate: float
    duration_s: float
    latencies_s: list[float] = field(default_factory=list)
    # How late each request's task started, from its due time: when these are large, the
    # latencies measure the generator (descheduled, or its loop busy), not the server.
    send_lags_s: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    # Per answered request: (due time from the start, send lag, latency: the lag included)
    # in seconds, and what ``read_answer`` made of its body (run_open_loop).
    timeline: list[tuple[float, float, float]] = field(default_factory=list)
    answers: list[Any] = field(default_factory=list)
    errors: int = 0
    elapsed_s: float = 0.0

    def summary(self) -> dict[str, float | int | dict[int, int]]:
        done = len(self.latencies_s)
        return {
            "target_rps": self.rate,
            "achieved_rps": round(done / self.elapsed_s, 1) if self.elapsed_s else 0.0,
            "requests": done,
            "errors": self.errors,
            "statuses": self.statuses,
            "p50_ms": percentile_ms(self.latencies_s, 50),
            "p90_ms": percentile_ms(self.latencies_s, 90),
            "p99_ms": percentile_ms(self.latencies_s, 99),
            "max_ms": percentile_ms(self.latencies_s, 100),
            "send_lag_p50_ms": percentile_ms(self.send_lags_s, 50),
            "send_lag_p99_ms": percentile_ms(self.send_lags_s, 99),
        }


def percentile_ms(seconds: Sequence[float] | np.ndarray, q: float) -> float:
    """The ``q``-th percentile of ``seconds`` in ms, rounded to 0.01; NaN when there are none
    (no request answered: a figure of 0 would read as instant)."""
    return round(float(np.percentile(seconds, q)) * 1000, 2) if len(seconds) else float("nan")


class _Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    async def request(self, raw: bytes) -> int:
        status, _ = await self.exchange(raw)
        return status

    async def exchange(self, raw: bytes) -> tuple[int, bytes]:
        """Send one request; the answer's status and body."""
        self.writer.write(raw)
        status_line = await self.reader.readline()
        if not status_line:
            raise ConnectionError("server closed the connection")
        status = int(status_line.split()[1])
        length = 0
        while True:
            line = await self.reader.readline()
            if line in (b"\r\n", b"\n", b""):
                break
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value.strip())
        return status, await self.reader.readexactly(length) if length else b""


def build_request(
    host: str, path: str, body: bytes, headers: dict[str, str] | None = None
) -> bytes:
    extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n{extra}\r\n"
    )
    return head.encode() + body


async def run_open_loop(
    host: str,
    port: int,
    path: str,
    next_body: Callable[[int], bytes],
    *,
    rate: float,
    duration_s: float,
    max_connections: int = 256,
    headers: dict[str, str] | None = None,
    read_answer: Callable[[int, bytes], Any] | None = None,
) -> LoadResult:
    """Send ``rate`` POST requests per second for ``duration_s`` seconds; bounded in count.
    ``read_answer(status, body)``, when given, is kept for each answered request (in
    ``answers``, in the order of ``timeline``)."""
    result = LoadResult(rate=rate, duration_s=duration_s)
    total = int(rate * duration_s)
    idle: list[_Connection] = []
    open_count = 0
    slots = asyncio.Semaphore(max_connections)

    async def one(i: int, due: float) -> None:
        nonlocal open_count
        # uvloop's timers have millisecond steps and may fire up to a millisecond early: a
        # request started early counts from its start, not from a due time it did not wait
        # for (which would shorten its latency); one started late counts from its due time,
        # its lateness included (open loop).
        started = time.perf_counter()
        origin = min(due, started)
        # How late this request's task started: the generator's own delay (a wait for a
        # free connection below is the server's). In the latency too, and reported apart.
        lag = max(0.0, started - due)
        result.send_lags_s.append(lag)
        async with slots:
            raw = build_request(host, path, next_body(i), headers)
            conn = idle.pop() if idle else None
            status, body = None, b""
            if conn is not None:
                try:
                    status, body = await conn.exchange(raw)
                except (OSError, ConnectionError, asyncio.IncompleteReadError):
                    # The server closed this idle keep-alive connection: a real client
                    # reconnects, and so do we (the latency still counts from the due time).
                    conn.writer.close()
                    conn = None
            if status is None:
                try:
                    reader, writer = await asyncio.open_connection(host, port)
                    open_count += 1
                    conn = _Connection(reader, writer)
                    status, body = await conn.exchange(raw)
                except (
                    OSError,
                    ConnectionError,
                    asyncio.IncompleteReadError,
                    ValueError,
                    IndexError,
                ):
                    result.errors += 1
                    if conn is not None:
                        conn.writer.close()
                    return
            latency = time.perf_counter() - origin
            result.latencies_s.append(latency)
            result.timeline.append((due - start, lag, latency))
            if read_answer is not None:
                result.answers.append(read_answer(status, body))
            result.statuses[status] = result.statuses.get(status, 0) + 1
            idle.append(conn)

    start = time.perf_counter()
    tasks = []
    for i in range(total):
        due = start + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(i, due)))
    await asyncio.gather(*tasks)
    result.elapsed_s = time.perf_counter() - start
    for conn in idle:
        conn.writer.close()
    return result


def run_load(load: Coroutine[Any, Any, Result]) -> Result:
    """Run ``load`` (a :func:`run_open_loop`, or loops gathered) to its end on uvloop where
    there is one."""
    if uvloop is None:
        return asyncio.run(load)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(load)
