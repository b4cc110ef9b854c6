"""Redis commands sent from an event loop, pipelined on one connection per loop.

A server process that makes its decisions on the event loop reads each decision's user from
Redis with an awaited ``MGET``. redis-py's asyncio client spent 86-116 µs of the loop's
CPU on one (a connection taken from its pool and given back, a timeout context, the reply
read through a stream reader), five to seven times what this client spends
(``benchmarks/redis_read.py``).
:class:`PipelinedRedis` keeps one connection per event loop and sends each command on it
at once: commands from concurrent requests are in flight together, and Redis answers them in
the order sent, so the replies (parsed by hiredis, as redis-py does) go to the commands'
futures in that order. A command costs the loop one write and its share of one read.

It speaks RESP2 and sends only what its caller asks (no retries: a reader's command is
harmless to repeat, but the caller decides). Its failures are redis-py's exceptions, so the
backends translate them as they do the blocking client's:

* the connection (``redis://`` or ``rediss://`` with the default certificate checks; the
  URL's user, password and database, sent as ``AUTH`` and ``SELECT`` once connected) is
  opened at the first command, and again at the first command after it was lost;
* a command not answered within ``socket_timeout`` fails with :class:`redis.TimeoutError`,
  and so do all the others in flight: the connection is closed, since a late reply would
  otherwise be taken for the next command's;
* a lost connection fails the commands in flight with :class:`redis.ConnectionError`;
  an error reply fails its own command (:class:`redis.ResponseError`) and no other.

>>> from tailorbot._redis import RedisAddress
>>> redis_ = PipelinedRedis(RedisAddress("redis://127.0.0.1:6379/0", 5.0, 2.0))
>>> asyncio.run(redis_.execute("MGET", "a", "b"))  # doctest: +SKIP
[None, None]
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections import deque
from typing import Any
from urllib.parse import urlsplit

import hiredis
import redis
from redis.connection import parse_url as connection_options

from tailorbot._redis import RedisAddress

DEFAULT_PORT = 6379


class _Replies(asyncio.Protocol):
    """One connection: commands written in order, their replies handed out in that order."""

    def __init__(self, loop: asyncio.AbstractEventLoop, timeout: float, where: str) -> None:
        self.loop = loop
        self.timeout = timeout
        self.where = where
        self.closed = False
        self._transport: asyncio.Transport | None = None
        self._parser = hiredis.Reader(replyError=redis.ResponseError)
        self._waiting: deque[tuple[asyncio.Future[Any], float]] = deque()
        self._timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]

    def send(self, packed: bytes) -> asyncio.Future[Any]:
        """Write one packed command: the future of its reply."""
        if self._transport is None or self.closed:
            raise redis.ConnectionError(f"connection to {self.where} closed")
        future = self.loop.create_future()
        deadline = self.loop.time() + self.timeout
        self._waiting.append((future, deadline))
        if self._timer is None:
            self._timer = self.loop.call_at(deadline, self._check_deadline)
        self._transport.write(packed)
        return future

    def data_received(self, data: bytes) -> None:
        self._parser.feed(data)
        try:
            while (reply := self._parser.gets()) is not False:
                if not self._waiting:
                    raise redis.ConnectionError(f"{self.where} sent a reply nothing asked for")
                future, _ = self._waiting.popleft()
                if future.done():  # its caller was cancelled
                    continue
                if isinstance(reply, redis.ResponseError):
                    future.set_exception(reply)
                else:
                    future.set_result(reply)
        except (hiredis.ProtocolError, redis.ConnectionError) as exc:
            self.close(redis.ConnectionError(f"{self.where}: {exc}"))

    def connection_lost(self, exc: Exception | None) -> None:
        self.close(redis.ConnectionError(f"connection to {self.where} lost"))

    def close(self, error: redis.RedisError) -> None:
        """Fail every command still waiting with ``error``, and close the connection."""
        if self.closed:
            return
        self.closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        waiting, self._waiting = self._waiting, deque()
        for future, _ in waiting:
            if not future.done():
                future.set_exception(error)
        if self._transport is not None:
            self._transport.abort()

    def _check_deadline(self) -> None:
        # One timer for all: the oldest command's deadline is the earliest (sent in order).
        self._timer = None
        if not self._waiting:
            return
        deadline = self._waiting[0][1]
        if deadline <= self.loop.time():
            self.close(redis.TimeoutError(f"{self.where} did not answer in {self.timeout} s"))
        else:
            self._timer = self.loop.call_at(deadline, self._check_deadline)


def _discard(replies: _Replies) -> None:
    """Close ``replies`` from any loop: at once on its own, else handed to its loop while
    that still runs (a closed loop's connection is left for the garbage collector, which
    closes its socket)."""
    if replies.closed:
        return
    error = redis.ConnectionError("client closed")
    try:
        running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    if replies.loop is running:
        replies.close(error)
    elif not replies.loop.is_closed():
        replies.loop.call_soon_threadsafe(replies.close, error)


class PipelinedRedis:
    """Commands to the Redis at ``address`` from the event loop that sends them, pipelined
    on one connection (see the module docstring). A second loop (an app started again)
    opens a connection of its own."""

    def __init__(self, address: RedisAddress) -> None:
        self.address = address
        self._replies: _Replies | None = None
        self._connecting: asyncio.Future[_Replies] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def execute(self, *args: str | bytes) -> Any:
        """Send one command (its name and arguments); its reply as hiredis parses it (bulk
        strings as bytes)."""
        replies = self._replies
        if replies is None or replies.closed or replies.loop is not asyncio.get_running_loop():
            replies = await self._connected()
        # hiredis's stub types the argument as a 1-tuple; it packs a tuple of any length.
        return await replies.send(hiredis.pack_command(args))  # type: ignore[arg-type]

    async def aclose(self) -> None:
        """Close the connection, after the one being opened, if any, is open (on the loop
        that opened it; the next command opens a new one)."""
        connecting = self._connecting
        if connecting is not None and self._loop is asyncio.get_running_loop():
            with contextlib.suppress(Exception):  # a failure to connect is its callers'
                await asyncio.shield(connecting)
        replies, self._replies, self._loop = self._replies, None, None
        if replies is not None:
            _discard(replies)

    async def _connected(self) -> _Replies:
        loop = asyncio.get_running_loop()
        if self._loop is not loop:  # the old loop's connection cannot be used here
            if self._replies is not None:
                _discard(self._replies)
            self._loop, self._replies, self._connecting = loop, None, None
        if self._connecting is None:
            self._connecting = loop.create_task(self._open(loop))
        # Shielded: a caller cancelled while it waits does not cancel the others' connection.
        return await asyncio.shield(self._connecting)

    async def _open(self, loop: asyncio.AbstractEventLoop) -> _Replies:
        try:
            self._replies = await self._connect(loop)
            return self._replies
        finally:
            self._connecting = None

    async def _connect(self, loop: asyncio.AbstractEventLoop) -> _Replies:
        options = connection_options(self.address.address)
        host, port = options.get("host", "localhost"), options.get("port", DEFAULT_PORT)
        where = f"redis at {host}:{port}"
        secure = "connection_class" in options  # rediss://: redis-py's SSLConnection
        replies = _Replies(loop, self.address.socket_timeout, where)
        try:
            await asyncio.wait_for(
                loop.create_connection(
                    lambda: replies,
                    host,
                    port,
                    ssl=ssl.create_default_context() if secure else None,
                ),
                self.address.connect_timeout,
            )
        except TimeoutError as exc:
            raise redis.TimeoutError(f"connecting to {where} timed out") from exc
        except (OSError, ValueError) as exc:  # ValueError: a host name IDNA cannot encode
            raise redis.ConnectionError(f"error connecting to {where}: {exc}") from exc
        handshake = []
        if options.get("password") is not None:
            user = options.get("username")
            credentials = (options["password"],) if user is None else (user, options["password"])
            handshake.append(("AUTH", *credentials))
        if options.get("db"):
            handshake.append(("SELECT", str(options["db"])))
        try:  # sent together; each reply is OK or its error
            await asyncio.gather(*(replies.send(hiredis.pack_command(c)) for c in handshake))
        except redis.ResponseError as exc:
            replies.close(redis.ConnectionError("handshake refused"))
            if str(exc).startswith(("WRONGPASS", "NOAUTH", "NOPERM")):
                raise redis.AuthenticationError(f"{where}: {exc}") from exc
            raise
        except BaseException:
            replies.close(redis.ConnectionError("handshake failed"))
            raise
        return replies

    def __repr__(self) -> str:  # the address without its credentials
        parts = urlsplit(self.address.address)
        return f"{type(self).__name__}({parts.scheme}://{parts.hostname}:{parts.port})"


__all__ = ["PipelinedRedis"]
