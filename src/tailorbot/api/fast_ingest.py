"""``POST /v1/events`` on the lean path, like ``/v1/personalize`` (api/fast.py).

Ingestion is the highest-volume route: a chatbot sends every conversation event through it.
FastAPI's per-request machinery (routing, the dependency graph, its exception and exit-stack
middleware) costs CPU on every batch, so this middleware answers the route directly: the API
key check, the body, the same ingestion call as the FastAPI handler
(``routers/events.py``: parse, validate, redact, append, off the event loop) and the same
answer, with the same error shapes as every other route (``api/errors.py``). A query string
other than none or ``partial=true``/``partial=false`` goes to the FastAPI route, which
parses it (and words its errors) as it always did. The FastAPI route stays registered: it
documents the route in the OpenAPI schema and serves it when ``fast_routes`` is off.

It sits inside the body-limit, admission and metrics middleware, so all of them still apply.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from tailorbot.api.errors import response_for_error
from tailorbot.api.fast import RouteTemplate, authorized_body
from tailorbot.api.offload import run_blocking
from tailorbot.api.routers.events import ingest_body, ingest_response

PATH = "/v1/events"
_ROUTE = RouteTemplate(PATH)
# The query strings answered here (anything else: FastAPI's query parsing and its errors).
_PARTIAL = {b"": False, b"partial=true": True, b"partial=false": False}


class FastIngest:
    """Answers ``POST /v1/events``; passes every other request to ``app``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        partial = _PARTIAL.get(scope.get("query_string", b""))
        if (
            scope["type"] != "http"
            or scope["path"] != PATH
            or scope["method"] != "POST"
            or partial is None
        ):
            await self.app(scope, receive, send)
            return
        scope["route"] = _ROUTE
        try:
            state = scope["app"].state
            body = await authorized_body(scope, receive)
            # Off the event loop: parsing and validating a batch, and the append to the log.
            result = await run_blocking(state, ingest_body, state.runtime.ingestion, body, partial)
            response = ingest_response(result, partial)
        except Exception as exc:  # noqa: BLE001 - mapped like every route's errors
            response = response_for_error(exc, "POST", PATH)
        await response(scope, receive, send)


__all__ = ["PATH", "FastIngest"]
