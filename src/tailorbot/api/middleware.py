"""Pure ASGI middleware: the request-body limit and per-route latency.

Pure ASGI (not ``BaseHTTPMiddleware``) keeps the per-request cost to a function call.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tailorbot.api.errors import error_response, route_template
from tailorbot.metrics import Metrics
from tailorbot.telemetry.logs import open_request
from tailorbot.telemetry.tracing import Tracing

access_logger = logging.getLogger("tailorbot.access")


class BodyLimitMiddleware:
    """Answer 413 to a body over ``max_body_bytes``: at once when ``Content-Length`` says so,
    else as soon as the streamed body (chunked, or lying about its length) passes the limit,
    before any handler has used it."""

    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    def _too_large(self, size: str) -> str:
        return f"request body is {size} bytes; at most {self.max_body_bytes} are accepted"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.max_body_bytes
        for name, value in scope["headers"]:
            if name == b"content-length":
                if not value.isdigit():
                    response = error_response(400, "bad_request", "invalid Content-Length header")
                    await response(scope, receive, send)
                    return
                if int(value) > limit:
                    response = error_response(
                        413, "payload_too_large", self._too_large(value.decode())
                    )
                    await response(scope, receive, send)
                    return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    # HTTPException passes through FastAPI's body parsing to the handlers.
                    raise HTTPException(413, self._too_large(f"more than {limit}"))
            return message

        await self.app(scope, limited_receive, send)


class RequestMetricsMiddleware:
    """Observe each request's latency and count its status code under its route template
    (``/v1/users/{user_id}``): the 5xx, 429 and 503 rates the alert rules watch. Opens the
    request's log context (its ``X-Request-ID``, echoed in the response, and
    ``traceparent``) and writes the access line (route template, never the path)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics
        self._responses: dict[tuple[str, int], Any] = {}
        self._latency: dict[str, Any] = {}  # route templates only: a bounded set

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500  # what the server answers when the app raises before responding
        context = open_request(scope["headers"])

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                # A new list: a response may hand out the same header list twice.
                message["headers"] = [
                    *message.get("headers", ()),
                    (b"x-request-id", context.request_id.encode()),
                ]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            label = route_template(scope)
            seconds = time.perf_counter() - start
            latency = self._latency.get(label)
            if latency is None:  # labels() costs more than the observation: keep the child
                latency = self._latency[label] = self.metrics.request_latency.labels(route=label)
            latency.observe(seconds)
            counter = self._responses.get((label, status))
            if counter is None:
                counter = self.metrics.responses.labels(route=label, status=str(status))
                self._responses[(label, status)] = counter
            counter.inc()
            if access_logger.isEnabledFor(logging.INFO):
                access_logger.info(
                    "%s %s %s",
                    scope["method"],
                    label,
                    status,
                    extra={
                        "event": "request",
                        "method": scope["method"],
                        "route": label,
                        "status": status,
                        "duration_ms": round(seconds * 1000, 3),
                    },
                )


class TracingMiddleware:
    """A server span per HTTP request, named ``{method} {route}`` with the HTTP semantic
    convention attributes. Installed only when tracing is on. The route template stands in
    for the path everywhere (``url.path`` is left out), so no user id reaches a span."""

    def __init__(self, app: ASGIApp, tracing: Tracing) -> None:
        self.app = app
        self.tracing = tracing

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        from opentelemetry.trace import SpanKind, Status, StatusCode

        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        method = scope["method"]
        server = scope.get("server") or ("", None)
        attributes = {
            "http.request.method": method,
            "url.scheme": scope.get("scheme", "http"),
            "server.address": server[0],
            "network.protocol.version": scope.get("http_version", "1.1"),
        }
        if server[1] is not None:
            attributes["server.port"] = server[1]
        with self.tracing.span(
            method,
            context=self.tracing.extract(headers),
            kind=SpanKind.SERVER,
            attributes=attributes,
        ) as span:

            async def send_traced(message: Message) -> None:
                if message["type"] == "http.response.start":
                    status = message["status"]
                    span.set_attribute("http.response.status_code", status)
                    if status >= 500:
                        span.set_status(Status(StatusCode.ERROR))
                await send(message)

            try:
                await self.app(scope, receive, send_traced)
            finally:
                route = getattr(scope.get("route"), "path", None)
                if route is not None:
                    span.set_attribute("http.route", route)
                    span.update_name(f"{method} {route}")
