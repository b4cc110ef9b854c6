"""An open-loop HTTP load generator (no coordinated omission).

Request *i* is due at ``start + i / rate`` whatever happened to the earlier ones; its latency is
measured from that due time (or from its start, if a timer woke it early), not from when a
connection happened to be free, so queueing in the server (or in this client) shows in the
figures instead of silently lowering the rate.
It speaks plain HTTP/1.1 with keep-alive, one request at a time on a connection, read by an
asyncio protocol (:class:`Connection`): lighter than a general client, or than asyncio's
streams, since its CPU is taken from the machine it measures.

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
from collections import deque
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple, TypeVar

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
    # How late each request was sent, from its due time: when these are large, the
    # latencies measure the generator (descheduled, or its loop busy), not the server.
    # (A wait for a free connection is not in it: that one is the server's.)
    send_lags_s: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    # Per answered request: (due time from the start, send lag, latency: the lag included)
    # in seconds, and what ``read_answer`` made of its body (run_open_loop).
    timeline: list[tuple[float, float, float]] = field(default_factory=list)
    answers: list[Any] = field(default_factory=list)
    errors: int = 0
    # Requests sent again on a new connection: the keep-alive one they went out on was
    # closed by the server before a byte of their answer came (see Connection).
    resent: int = 0
    elapsed_s: float = 0.0

    def summary(self) -> dict[str, float | int | dict[int, int]]:
        done = len(self.latencies_s)
        return {
            "target_rps": self.rate,
            "achieved_rps": round(done / self.elapsed_s, 1) if self.elapsed_s else 0.0,
            "requests": done,
            "errors": self.errors,
            "resent": self.resent,
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


# What a connection calls with each exchange's outcome: (status, body, False) for an answer;
# (None, b"", stale) for none. ``stale``: the connection, which had answered before, closed
# before a byte of this answer came (a keep-alive connection the server let go): the one
# case a client sends again, on a new connection. Closed mid-answer, or bytes that are not
# an answer: a failure, never sent again.
OnAnswer = Callable[[int | None, bytes, bool], None]


class Connection(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection, one exchange at a time (no pipelining), as a
    client's pooled connection is used (:func:`connect` opens one). A protocol reads each
    answer from the bytes as they arrive, where asyncio's streams read a line at a time, a
    coroutine step each: the generator's CPU is taken from the machine it measures.

    An answer whose end the head does not give (no ``Content-Length``), or followed by
    bytes nobody asked for, is the connection's last: it is closed, not used again."""

    def __init__(self) -> None:
        self._transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        self._on_answer: OnAnswer | None = None
        self._answers = 0
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        if self._on_answer is None:
            return
        try:
            answer = _answer(self._buffer)
        except (ValueError, IndexError):  # not an HTTP answer: this exchange fails
            self.close()
            self._answered(None, b"", stale=False)
            return
        if answer is None:
            return
        status, body, used, framed = answer
        del self._buffer[:used]
        self._answers += 1
        if self._buffer or not framed:
            self.close()
        self._answered(status, body, stale=False)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._answered(None, b"", stale=self._answers > 0 and not self._buffer)

    def send(self, raw: bytes, on_answer: OnAnswer) -> None:
        """Send one request; ``on_answer`` gets its outcome (at once when closed)."""
        if self.closed or self._transport is None:
            on_answer(None, b"", self._answers > 0)
            return
        self._on_answer = on_answer
        self._transport.write(raw)

    async def request(self, raw: bytes) -> int:
        status, _ = await self.exchange(raw)
        return status

    async def exchange(self, raw: bytes) -> tuple[int, bytes]:
        """Send one request; the answer's status and body (ConnectionError without one)."""
        answer: asyncio.Future[tuple[int, bytes]] = asyncio.get_running_loop().create_future()

        def settle(status: int | None, body: bytes, stale: bool) -> None:
            if answer.done():
                return
            if status is None:
                answer.set_exception(ConnectionError("no answer: the connection closed"))
            else:
                answer.set_result((status, body))

        self.send(raw, settle)
        return await answer

    def close(self) -> None:
        self.closed = True
        if self._transport is not None:
            self._transport.close()

    def _answered(self, status: int | None, body: bytes, *, stale: bool) -> None:
        on_answer, self._on_answer = self._on_answer, None
        if on_answer is not None:
            on_answer(status, body, stale)


async def connect(host: str, port: int) -> Connection:
    """A new :class:`Connection` to ``host:port``."""
    _, connection = await asyncio.get_running_loop().create_connection(Connection, host, port)
    return connection


def _answer(buffer: bytearray) -> tuple[int, bytes, int, bool] | None:
    """The first whole answer in ``buffer``: (status, body, bytes it takes, whether its head
    gave its length), None while it is incomplete. Its body is ``Content-Length`` long;
    without one, empty (and the connection is not used again)."""
    end = buffer.find(b"\r\n\r\n")
    if end < 0:
        return None
    head = bytes(buffer[:end]).lower()
    status = int(head.split(b" ", 2)[1])
    length = 0
    at = head.find(b"\r\ncontent-length:")
    if at >= 0:
        stop = head.find(b"\r\n", at + 2)
        length = int(head[at + 17 : stop if stop >= 0 else len(head)])
    used = end + 4 + length
    if len(buffer) < used:
        return None
    return status, bytes(buffer[end + 4 : used]), used, at >= 0


def build_request(
    host: str, path: str, body: bytes, headers: dict[str, str] | None = None
) -> bytes:
    extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n{extra}\r\n"
    )
    return head.encode() + body


class _Due(NamedTuple):
    """One request of an open loop, as sent: its number, its due time, when its latency
    counts from (the due time, or its send if that came early), and how late it was sent."""

    i: int
    due: float
    origin: float
    lag: float


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
    ``answers``, in the order of ``timeline``).

    Each request is sent from the timer loop itself, and its answer handled in the
    connection's callback: no task per request (its CPU is the machine's, see
    :class:`Connection`). A request due while ``max_connections`` are busy waits for the
    first to be free."""
    result = LoadResult(rate=rate, duration_s=duration_s)
    total = int(rate * duration_s)
    loop = asyncio.get_running_loop()
    idle: list[Connection] = []
    waiting: deque[_Due] = deque()  # due while no connection was free
    busy = 0  # connections in an exchange, or being opened for one
    left = total  # requests not yet answered nor failed
    finished: asyncio.Future[None] = loop.create_future()
    opening: set[asyncio.Task[None]] = set()  # kept referenced until done

    def start(request: _Due) -> None:
        nonlocal busy
        conn = None
        while idle and conn is None:
            conn = idle.pop()
            if conn.closed:  # the server closed it while idle
                conn = None
        if conn is None and busy >= max_connections:
            waiting.append(request)  # the wait counts in the latency, not in the lag
            return
        busy += 1
        raw = build_request(host, path, next_body(request.i), headers)
        if conn is None:
            fresh(request, raw)
            return
        sent = conn

        def on_answer(status: int | None, body: bytes, stale: bool) -> None:
            if stale:
                # The server closed this idle keep-alive connection: a real client sends
                # again on a new one, and so do we (the latency still counts from the due
                # time; the resends are counted).
                result.resent += 1
                fresh(request, raw)
            else:
                done(request, sent, status, body)

        conn.send(raw, on_answer)

    def fresh(request: _Due, raw: bytes) -> None:
        task = loop.create_task(over_new_connection(request, raw))
        opening.add(task)
        task.add_done_callback(opening.discard)

    async def over_new_connection(request: _Due, raw: bytes) -> None:
        try:
            conn = await connect(host, port)
        except OSError:
            done(request, None, None, b"")
            return
        conn.send(raw, lambda status, body, _: done(request, conn, status, body))

    def done(request: _Due, conn: Connection | None, status: int | None, body: bytes) -> None:
        nonlocal busy, left
        busy -= 1
        left -= 1
        try:
            if status is None:  # no answer on a connection of its own: the server's failure
                result.errors += 1
                if conn is not None:
                    conn.close()
            else:
                latency = time.perf_counter() - request.origin
                if read_answer is not None:  # first: if it raises, no list holds this answer
                    result.answers.append(read_answer(status, body))
                result.latencies_s.append(latency)
                result.timeline.append((request.due - begin, request.lag, latency))
                result.statuses[status] = result.statuses.get(status, 0) + 1
                if conn is not None and not conn.closed:
                    idle.append(conn)
            if waiting:
                start(waiting.popleft())
        except Exception as exc:  # noqa: BLE001 - the caller's read_answer or next_body
            # raised in a connection's callback, where asyncio would only log it: the run
            # fails with it instead of waiting forever for the answers left
            if not finished.done():
                finished.set_exception(exc)
            return
        if left == 0 and not finished.done():
            finished.set_result(None)

    begin = time.perf_counter()
    for i in range(total):
        if finished.done():  # failed (see done)
            break
        due = begin + i / rate
        now = time.perf_counter()
        if due > now:
            await asyncio.sleep(due - now)
            now = time.perf_counter()
        # uvloop's timers have millisecond steps and may fire up to a millisecond early: a
        # request sent early counts from its send, not from a due time it did not wait for
        # (which would shorten its latency); one sent late counts from its due time, its
        # lateness included (open loop), and that lateness is the generator's own (a
        # descheduled process, a busy loop): reported apart as the send lag.
        request = _Due(i, due, min(due, now), max(0.0, now - due))
        result.send_lags_s.append(request.lag)
        start(request)
    if total:
        await finished
    result.elapsed_s = time.perf_counter() - begin
    for conn in idle:
        conn.close()
    return result


def run_load(load: Coroutine[Any, Any, Result]) -> Result:
    """Run ``load`` (a :func:`run_open_loop`, or loops gathered) to its end on uvloop where
    there is one."""
    if uvloop is None:
        return asyncio.run(load)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(load)
