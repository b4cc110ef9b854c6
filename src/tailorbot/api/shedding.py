"""Load shedding: a fast 503 instead of a queue that grows until every request times out.

Per process, :class:`LoadShedMiddleware` admits at most ``max_concurrent_requests`` requests
at a time and holds at most ``max_inflight_body_bytes`` of request bodies; past either bound
a request is answered at once with 503 and ``Retry-After`` (counted in
``tailorbot_requests_shed_total{reason}``) before its body is read. A body must arrive within
``body_read_timeout_s`` of the request's start (408 otherwise), so slow senders cannot hold
admission slots (:class:`BodyDeadlines`: one timer for them all, not one per request). A
body sent to ``/v1/`` with a ``Content-Type`` other than JSON is a 415.

Probes and metrics (``/healthz``, ``/readyz``, ``/metrics``) are never shed: liveness must
answer exactly when the process is busy.

Pure ASGI (not ``BaseHTTPMiddleware``) keeps the per-request cost to a function call; one
event loop per process means the counters need no lock.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tailorbot.api.errors import error_response
from tailorbot.metrics import Metrics

T = TypeVar("T")
MAX_SWEEP_S = 1.0  # the body deadlines' sweep, at most this far apart

NEVER_SHED = frozenset({"/healthz", "/readyz", "/metrics"})
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
JSON_API = "/v1/"  # JSON bodies only (the dashboard's sign-in is an HTML form)


def json_content_type(value: bytes) -> bool:
    """Whether a ``Content-Type`` header value names JSON (``application/json``, ``+json``).

    >>> json_content_type(b"application/json; charset=utf-8"), json_content_type(b"text/plain")
    (True, False)
    >>> json_content_type(b"application/problem+json")
    True
    """
    media = value.split(b";", 1)[0].strip().lower()
    return media == b"application/json" or (
        media.startswith(b"application/") and media.endswith(b"+json")
    )


class LoadShedMiddleware:
    """Admission control for one server process (see the module docstring).

    Parameters
    ----------
    app
        The ASGI app it guards.
    max_concurrent_requests
        Requests in progress at once; one more is answered 503.
    max_inflight_body_bytes
        Bytes of request bodies held at once (declared by ``Content-Length``, or received so
        far when streamed); a request that would pass it is answered 503.
    body_read_timeout_s
        Seconds from the request's start by which its whole body must have arrived.
    retry_after_s
        The ``Retry-After`` of a shed request.
    metrics
        Where ``requests_shed`` is counted.
    """

    def __init__(
        self,
        app: ASGIApp,
        max_concurrent_requests: int,
        max_inflight_body_bytes: int,
        body_read_timeout_s: float,
        retry_after_s: int,
        metrics: Metrics,
    ) -> None:
        self.app = app
        self.max_concurrent_requests = max_concurrent_requests
        self.max_inflight_body_bytes = max_inflight_body_bytes
        self.body_read_timeout_s = body_read_timeout_s
        self.retry_after_s = retry_after_s
        self.metrics = metrics
        self._active = 0
        self._body_bytes = 0
        self._deadlines = BodyDeadlines(min(MAX_SWEEP_S, body_read_timeout_s / 4))
        # read when scraped: an increment and a decrement of the gauge per request took
        # two locks and four checks
        metrics.requests_in_flight.set_function(lambda: self._active)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in NEVER_SHED:
            await self.app(scope, receive, send)
            return
        declared, content_type = _body_headers(scope)
        if scope["method"] in _BODY_METHODS and scope["path"].startswith(JSON_API):
            refusal = _media_refusal(content_type, declared)
            if refusal is not None:
                await error_response(415, "unsupported_media_type", refusal)(scope, receive, send)
                return
        if self._active >= self.max_concurrent_requests:
            await self._shed("concurrency", scope, receive, send)
            return
        if self._body_bytes + declared > self.max_inflight_body_bytes:
            await self._shed("body_bytes", scope, receive, send)
            return
        self._active += 1
        self._body_bytes += declared
        deadline = asyncio.get_running_loop().time() + self.body_read_timeout_s
        guarded = _GuardedReceive(self, receive, declared, deadline, self._deadlines)
        try:
            await self.app(scope, guarded.receive, send)
        finally:
            self._active -= 1
            self._body_bytes -= guarded.accounted

    async def _shed(self, reason: str, scope: Scope, receive: Receive, send: Send) -> None:
        self.metrics.requests_shed.labels(reason=reason).inc()
        response = error_response(
            503,
            "overloaded",
            "the server is at capacity; retry after the Retry-After delay",
        )
        response.headers["Retry-After"] = str(self.retry_after_s)
        await response(scope, receive, send)

    def _take_body_bytes(self, count: int) -> None:
        """Account ``count`` more streamed bytes, or shed the request mid-body (503)."""
        if self._body_bytes + count > self.max_inflight_body_bytes:
            self.metrics.requests_shed.labels(reason="body_bytes").inc()
            raise HTTPException(
                503,
                "the server is at capacity; retry after the Retry-After delay",
                headers={"Retry-After": str(self.retry_after_s)},
            )
        self._body_bytes += count


class BodyDeadlines:
    """The body deadlines of one process's requests, kept by one timer per event loop: while
    some request waits for its body, a sweep every ``tick_s`` seconds cancels the waits past
    their deadline (a 408 is at most ``tick_s`` late). ``asyncio.timeout_at`` around each
    ``receive`` made and cancelled a timer per request for a deadline that almost never
    fires: 12 µs of the event loop's CPU a request, a fifth of the lean routes' ASGI layers
    (docs/benchmarks.md).

    >>> async def main() -> str:
    ...     deadlines = BodyDeadlines(tick_s=0.01)
    ...     loop = asyncio.get_running_loop()
    ...     wait = _Wait(loop.time() + 0.02)
    ...     try:
    ...         await deadlines.waiting(wait, lambda: asyncio.sleep(5))
    ...     except TimeoutError:
    ...         return f"expired: {wait.expired}"
    ...     return "answered"
    >>> asyncio.run(main())
    'expired: True'
    """

    def __init__(self, tick_s: float) -> None:
        self.tick_s = tick_s
        self._waits: dict[_Wait, asyncio.Task[Any]] = {}
        # the loops with a sweep pending: one app may be served by several loops in turn
        # (a test client's), and a loop may close with its sweep still pending
        self._armed: set[asyncio.AbstractEventLoop] = set()

    async def waiting(self, wait: _Wait, call: Callable[[], Awaitable[T]]) -> T:
        """What ``call()`` answers, or :class:`TimeoutError` once ``wait.deadline`` (on the
        loop's clock) has passed; the task is cancelled then, as by ``asyncio.timeout``."""
        task = asyncio.current_task()
        if task is None:
            raise RuntimeError("BodyDeadlines.waiting needs a task")
        loop = asyncio.get_running_loop()
        if loop.time() >= wait.deadline:
            raise TimeoutError
        cancelling = task.cancelling()
        self._waits[wait] = task
        if loop not in self._armed:
            self._armed = {armed for armed in self._armed if not armed.is_closed()}
            self._armed.add(loop)
            loop.call_later(self.tick_s, self._sweep, loop)
        try:
            return await call()
        except asyncio.CancelledError:
            # ours, and no other cancellation pending: the deadline passed
            if wait.expired and task.uncancel() <= cancelling:
                raise TimeoutError from None
            raise
        finally:
            self._waits.pop(wait, None)

    def _sweep(self, loop: asyncio.AbstractEventLoop) -> None:
        """End this loop's waits past their deadline (another loop's tasks are its own
        sweep's: a task is cancelled from its loop's thread only)."""
        now = loop.time()
        mine = [(w, t) for w, t in list(self._waits.items()) if t.get_loop() is loop]
        for wait, task in mine:
            if wait.deadline <= now:
                del self._waits[wait]
                wait.expired = True
                task.cancel()
        if any(not w.expired for w, _ in mine):
            loop.call_later(self.tick_s, self._sweep, loop)
        else:
            self._armed.discard(loop)


class _Wait:
    """One request's wait for its body: its deadline, and whether the sweep ended it."""

    __slots__ = ("deadline", "expired")

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline
        self.expired = False


class _GuardedReceive:
    """``receive`` with the body deadline and the streamed-bytes accounting."""

    def __init__(
        self,
        owner: LoadShedMiddleware,
        receive: Receive,
        declared: int,
        deadline: float,
        deadlines: BodyDeadlines,
    ) -> None:
        self.owner = owner
        self.inner = receive
        self.wait = _Wait(deadline)
        self.deadlines = deadlines
        self.accounted = declared  # bytes this request holds in the owner's total
        self.received = 0
        self.complete = False

    async def receive(self) -> Message:
        if self.complete:  # after the body: disconnect polling, no deadline
            return await self.inner()
        try:
            message = await self.deadlines.waiting(self.wait, self.inner)
        except TimeoutError:
            raise HTTPException(
                408,
                f"request body not received within {self.owner.body_read_timeout_s:g}s",
            ) from None
        if message["type"] != "http.request":
            self.complete = True
            return message
        self.received += len(message.get("body", b""))
        if self.received > self.accounted:  # streamed, or more than Content-Length said
            self.owner._take_body_bytes(self.received - self.accounted)
            self.accounted = self.received
        self.complete = not message.get("more_body", False)
        return message


def _media_refusal(content_type: bytes | None, declared: int) -> str | None:
    """Why a JSON API body's Content-Type is refused (415), or None. A body without one is
    refused too: the lean routes would read it as JSON and FastAPI's as no object at all."""
    if content_type is None:
        return "missing Content-Type: send application/json" if declared > 0 else None
    if json_content_type(content_type):
        return None
    media = content_type.split(b";", 1)[0].decode("latin-1").strip()
    return f"unsupported Content-Type {media!r}: send application/json"


def _body_headers(scope: Scope) -> tuple[int, bytes | None]:
    """``Content-Length`` (0 when absent or not a number; the body limit answers that) and
    ``Content-Type`` (None when absent)."""
    length, content_type = 0, None
    for name, value in scope["headers"]:
        if name == b"content-length" and value.isdigit():
            length = int(value)
        elif name == b"content-type":
            content_type = value
    return length, content_type
