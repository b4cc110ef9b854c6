"""The open-loop load generator (benchmarks/loadgen.py): every figure in docs/benchmarks.md
that has a latency comes through it, so it is checked against a real HTTP server here: its
answers read whole whatever the segments, a keep-alive connection the server closed
replaced, a server that answers nothing counted as errors, and the latencies counted from
the due times."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from loadgen import LoadResult, connect, run_open_loop  # noqa: E402

# (the writer, the request's number on the server, its number on its connection)
Handler = Callable[[asyncio.StreamWriter, int, int], Awaitable[bool]]


async def _read_request(reader: asyncio.StreamReader) -> bytes | None:
    """One request's body (None at the end of the connection)."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return None
    length = 0
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    return await reader.readexactly(length)


@asynccontextmanager
async def _server(handler: Handler) -> AsyncIterator[tuple[int, list[int]]]:
    """A server answering each request with ``handler(writer, n, own)`` (``n``: the
    request's number on the server, ``own`` on its connection, from 1; False from it closes
    the connection). Yields its port and the number of connections it accepted (a one-item
    list)."""
    accepted = [0]
    count = [0]

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted[0] += 1
        own = 0
        while await _read_request(reader) is not None:
            count[0] += 1
            own += 1
            if not await handler(writer, count[0], own):
                break
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1], accepted
    finally:
        server.close()
        await server.wait_closed()


def _answer(status: int, body: bytes, length: str = "Content-Length") -> tuple[bytes, bytes]:
    head = f"HTTP/1.1 {status} X\r\nContent-Type: application/json\r\n{length}: {len(body)}"
    return (head + "\r\nX-Other: 1\r\n\r\n").encode(), body


async def _reply(writer: asyncio.StreamWriter, status: int = 200, body: bytes = b"ok") -> None:
    writer.write(b"".join(_answer(status, body)))
    await writer.drain()


async def _load(port: int, rate: float, duration_s: float, **options: Any) -> LoadResult:
    """The generator's load on the test server: ``rate`` empty POSTs a second."""
    return await run_open_loop(
        "127.0.0.1", port, "/x", lambda i: b"{}", rate=rate, duration_s=duration_s, **options
    )


def test_answers_read_whole_from_split_segments_and_statuses_counted() -> None:
    async def handler(writer: asyncio.StreamWriter, n: int, own: int) -> bool:
        head, body = _answer(200 if n % 3 else 503, b'{"n": %d}' % n)
        for part in (head[:7], head[7:], body[:3], body[3:]):  # one segment each
            writer.write(part)
            await writer.drain()
            await asyncio.sleep(0)
        return True

    async def run() -> None:
        async with _server(handler) as (port, accepted):
            result = await _load(
                port,
                300,
                0.3,
                read_answer=lambda status, body: (status, body.startswith(b'{"n": ')),
            )
            assert result.errors == 0
            assert sum(result.statuses.values()) == 90
            assert result.statuses[503] == 30
            assert all(whole for _, whole in result.answers)
            assert accepted[0] < 90  # connections kept alive and used again

    asyncio.run(run())


def test_a_connection_the_server_closed_is_replaced() -> None:
    async def handler(writer: asyncio.StreamWriter, n: int, own: int) -> bool:
        await _reply(writer)
        return n % 5 != 0  # every fifth answer closes its connection (keep-alive ends)

    async def run() -> None:
        async with _server(handler) as (port, accepted):
            result = await _load(port, 200, 0.5)
            assert (result.errors, result.statuses) == (0, {200: 100})
            assert accepted[0] >= 100 // 5

    asyncio.run(run())


def test_a_server_that_answers_nothing_counts_as_errors() -> None:
    async def handler(writer: asyncio.StreamWriter, n: int, own: int) -> bool:
        writer.write(b"not http\r\n\r\n" if n % 2 else b"")
        return False

    async def run() -> None:
        async with _server(handler) as (port, _):
            result = await _load(port, 100, 0.2)
            assert result.errors == 20
            assert result.latencies_s == []

    asyncio.run(run())


def test_latency_counts_from_the_due_time_past_a_busy_connection_pool() -> None:
    """One connection and a server taking 50 ms an answer: requests due every 10 ms queue
    for the connection, and that wait is in their latency (open loop), not in the send
    lag (the generator sent on time)."""

    async def handler(writer: asyncio.StreamWriter, n: int, own: int) -> bool:
        await asyncio.sleep(0.05)
        await _reply(writer)
        return True

    async def run() -> None:
        async with _server(handler) as (port, accepted):
            result = await _load(port, 100, 0.1, max_connections=1)
            assert accepted[0] == 1 and result.statuses == {200: 10}
            # the last of 10 waited for the nine before it: about 10 x 50 ms less its 90 ms,
            # nearly all of it beyond its send lag (however late a busy machine sent it)
            _, lag, latency = max(result.timeline, key=lambda t: t[2])
            assert latency - lag >= 0.3

    asyncio.run(run())


def test_connect_exchange_for_a_closed_connection_raises() -> None:
    async def handler(writer: asyncio.StreamWriter, n: int, own: int) -> bool:
        writer.write(b"".join(_answer(201, b"made")))
        return False

    async def run() -> None:
        async with _server(handler) as (port, _):
            conn = await connect("127.0.0.1", port)
            assert await conn.exchange(b"POST /x HTTP/1.1\r\nContent-Length: 0\r\n\r\n") == (
                201,
                b"made",
            )
            with pytest.raises(ConnectionError):
                await conn.exchange(b"POST /x HTTP/1.1\r\nContent-Length: 0\r\n\r\n")
            conn.close()

    asyncio.run(run())


def test_a_request_whose_connection_closed_before_its_answer_is_sent_again() -> None:
    """A keep-alive connection the server lets go as a request goes out on it: the request
    goes again on a new connection (counted in ``resent``), as a client's pool does."""

    async def handler(writer: asyncio.StreamWriter, n: int, own: int) -> bool:
        if own == 3:  # the third request on each connection: closed without a byte of answer
            return False
        await _reply(writer)
        return True

    async def run() -> None:
        async with _server(handler) as (port, accepted):
            result = await _load(port, 200, 0.5, max_connections=1)
            assert (result.errors, result.statuses) == (0, {200: 100})
            # each connection answers two, then drops the third, which goes again
            assert result.resent == accepted[0] - 1 >= 100 // 2 - 1

    asyncio.run(run())


def test_an_unreadable_answer_on_a_used_connection_is_an_error_not_sent_again() -> None:
    async def handler(writer: asyncio.StreamWriter, n: int, own: int) -> bool:
        writer.write(b"".join(_answer(200, b"ok")) if own == 1 else b"garbage\r\n\r\n")
        await writer.drain()
        return True

    async def run() -> None:
        async with _server(handler) as (port, _):
            result = await _load(port, 100, 0.2, max_connections=1)
            assert result.resent == 0
            assert result.errors == 10  # the second request of each connection
            assert result.statuses == {200: 10}

    asyncio.run(run())


def test_an_answer_without_its_length_ends_its_connection() -> None:
    """Header names in any case; without a Content-Length the body's end is unknown, so
    the bytes after the head are not taken for the next request's answer."""

    async def handler(writer: asyncio.StreamWriter, n: int, own: int) -> bool:
        if n % 2:
            writer.write(b"".join(_answer(200, b"ok", length="CONTENT-LENGTH")))
        else:
            writer.write(b"HTTP/1.1 202 X\r\nX-Other: 1\r\n\r\nHTTP/1.1 500 stray\r\n\r\n")
        await writer.drain()
        return True

    async def run() -> None:
        async with _server(handler) as (port, accepted):
            result = await _load(
                port,
                100,
                0.2,
                max_connections=1,
                read_answer=lambda status, body: body,
            )
            assert result.errors == 0 and result.statuses == {200: 10, 202: 10}
            assert sorted(set(result.answers)) == [b"", b"ok"]
            assert accepted[0] >= 10  # a new connection after each 202

    asyncio.run(run())


def test_a_failing_read_answer_fails_the_run() -> None:
    async def handler(writer: asyncio.StreamWriter, n: int, own: int) -> bool:
        await _reply(writer)
        return True

    def read(status: int, body: bytes) -> None:
        raise ValueError("unreadable body")

    async def run() -> None:
        async with _server(handler) as (port, _):
            with pytest.raises(ValueError, match="unreadable body"):
                await asyncio.wait_for(
                    _load(
                        port,
                        100,
                        0.2,
                        read_answer=read,
                    ),
                    timeout=60,
                )

    asyncio.run(run())
