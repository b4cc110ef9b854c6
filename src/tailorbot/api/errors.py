"""Exception handlers: every error becomes ``{"error", "message", "problems"}``, never a trace.

:class:`~tailorbot.errors.EngineError` carries its own status; FastAPI's request validation
becomes 422 (or 400 for a body that is not JSON); an unreachable backend becomes 503 with
``Retry-After``; anything unexpected becomes a 500 whose details go to the server log only.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any, cast

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.responses import Response

from tailorbot.api.deps import API_KEY_HEADER, api_key_refusal
from tailorbot.api.responses import OrjsonResponse
from tailorbot.api.schemas import ErrorResponse
from tailorbot.errors import (
    RETRY_AFTER_S,
    VALUE_ERROR_PREFIX,
    BackendError,
    EngineError,
    Problem,
)

logger = logging.getLogger(__name__)

HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    408: "request_timeout",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid_input",
    429: "overloaded",
    503: "unavailable",
}

# For route decorators: `responses=error_responses(404, 503)` documents the error shape.
_DESCRIPTIONS = {
    400: "The body is not valid JSON.",
    401: "The X-API-Key header is missing.",
    403: "The X-API-Key header is wrong.",
    404: "Not found.",
    408: "The body did not arrive within `body_read_timeout_s`.",
    413: "Body, batch or a text is too large.",
    415: "The body's Content-Type is not JSON.",
    422: "Invalid input; `problems` lists each field and reason.",
    429: "Too far behind; retry after `Retry-After` seconds.",
    503: "A backend is unreachable, or the process is at capacity; retry after `Retry-After` "
    "seconds.",
}


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {s: {"model": ErrorResponse, "description": _DESCRIPTIONS[s]} for s in statuses}


def error_response(
    status: int,
    code: str,
    message: str,
    problems: Iterable[Problem] = (),
    retry_after: int | None = None,
) -> Response:
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else None
    body = {"error": code, "message": message, "problems": [p.as_dict() for p in problems]}
    return OrjsonResponse(body, status_code=status, headers=headers)


def response_for_error(exc: Exception, method: str, route: str) -> Response:
    """The answer to an error raised while serving ``method route`` (one mapping for the
    FastAPI handlers and the fast routes). ``route`` is the route template, never the path:
    the path holds user ids, and the log promises templates only."""
    if isinstance(exc, EngineError):
        return error_response(exc.http_status, exc.code, exc.message, exc.problems, exc.retry_after)
    if isinstance(exc, BackendError):
        logger.warning("%s unavailable on %s %s: %s", exc.what, method, route, exc)
        return error_response(503, "unavailable", f"{exc.what} unavailable", (), RETRY_AFTER_S)
    if isinstance(exc, HTTPException):
        code = HTTP_CODES.get(exc.status_code, "error")
        message = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ")
        response = error_response(exc.status_code, code, message)
        if exc.headers:
            response.headers.update(exc.headers)
        return response
    logger.error("unhandled error on %s %s", method, route, exc_info=exc)
    return error_response(500, "internal", "internal error; the server log has the details")


async def _error(request: Request, exc: Exception) -> Response:
    return response_for_error(exc, request.method, route_template(request.scope))


def route_template(scope: Mapping[str, Any]) -> str:
    """The matched route's template (``/v1/users/{user_id}``), or ``unmatched``: what logs
    and metric labels name a request by, never its path (which holds user ids)."""
    return getattr(scope.get("route"), "path", None) or "unmatched"


def _field_of(loc: Sequence[Any]) -> str:
    where, *path = loc or ("body",)
    dotted = ".".join(str(part) for part in path)
    if where == "body":
        return dotted or "(body)"
    return f"{dotted} ({where})" if dotted else str(where)


def validation_response(errors: Sequence[Mapping[str, Any]]) -> Response:
    """400 for a body that is not JSON, else 422 listing each field (pydantic's errors, with
    ``loc`` starting at ``"body"`` as FastAPI reports them)."""
    for item in errors:
        if item.get("type") == "json_invalid":
            reason = item.get("ctx", {}).get("error", "invalid JSON")
            return error_response(400, "bad_request", f"request body is not valid JSON: {reason}")
    problems = [
        Problem(
            None,
            _field_of(item.get("loc", ())),
            str(item.get("msg", "invalid")).removeprefix(VALUE_ERROR_PREFIX),
        )
        for item in errors
    ]
    return error_response(422, "invalid_input", "invalid request", problems)


def _validation_handler(
    guarded: Sequence[object],
) -> Callable[[Request, Exception], Awaitable[Response]]:
    """FastAPI parses a JSON body before it runs a route's dependencies, so on a ``guarded``
    route (the API key's) a request without its key would learn what is wrong with its body
    (400/422) instead of getting the 401/403 every other request gets, and that the lean
    routes answer first: the key is checked here first."""

    ids = frozenset(id(route) for route in guarded)  # routes compare by identity here

    async def handle(request: Request, exc: Exception) -> Response:
        if id(request.scope.get("route")) in ids:
            key = request.headers.get(API_KEY_HEADER)
            refused = api_key_refusal(request.app.state.settings, key)
            if refused is not None:
                return response_for_error(refused, request.method, route_template(request.scope))
        return validation_response(cast(RequestValidationError, exc).errors())

    return handle


def install_error_handlers(app: FastAPI, guarded: Sequence[object] = ()) -> None:
    """``guarded``: the routes that need the API key (when one is configured)."""
    for kind in (EngineError, BackendError, HTTPException, Exception):
        app.add_exception_handler(kind, _error)
    app.add_exception_handler(RequestValidationError, _validation_handler(guarded))
