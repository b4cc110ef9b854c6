"""The hot route on a lean path: ``POST /v1/personalize`` answered by plain ASGI.

A chatbot calls ``/v1/personalize`` for every customer message, inside its own reply budget.
FastAPI's per-request machinery (the dependency graph, body parsing through its request
model, its exception middleware) costs more CPU than the decision itself, so this
middleware answers that one route directly: the API key check, ``model_validate_json`` of
the same request model, the decision service's answer as plain data, and an orjson body —
with the same error shapes as every other route (``api/errors.py``). The FastAPI route stays
registered: it documents the route in the OpenAPI schema and serves it when ``fast_routes``
is off.

It sits inside the body-limit and metrics middleware, so both still apply.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError
from starlette.types import ASGIApp, Receive, Scope, Send

from tailorbot.api.deps import API_KEY_HEADER, api_key_refusal, get_decider_of
from tailorbot.api.errors import response_for_error, validation_response
from tailorbot.api.offload import run_decision
from tailorbot.api.responses import OrjsonResponse
from tailorbot.services.decisions.schemas import PersonalizeRequest

PATH = "/v1/personalize"
_KEY_HEADER = API_KEY_HEADER.lower().encode()


@dataclass(frozen=True, slots=True)
class RouteTemplate:
    """What the metrics middleware reads from ``scope["route"]``: the route template."""

    path: str


_ROUTE = RouteTemplate(PATH)


class FastPersonalize:
    """Answers ``POST /v1/personalize``; passes every other request to ``app``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != PATH or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        scope["route"] = _ROUTE
        try:
            response = await self._answer(scope, receive)
        except Exception as exc:  # noqa: BLE001 - mapped like every route's errors
            response = response_for_error(exc, "POST", PATH)
        await response(scope, receive, send)

    async def _answer(self, scope: Scope, receive: Receive) -> Any:
        state = scope["app"].state
        body = await authorized_body(scope, receive)
        try:
            request = PersonalizeRequest.model_validate_json(body)
        except ValidationError as exc:
            errors = [{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_url=False)]
            return validation_response(errors)
        decider = await get_decider_of(scope["app"])
        # Off the event loop: the decision reads the stores and appends to the log.
        answer = await run_decision(state, decider.personalize_payload, request)
        return OrjsonResponse(answer)


async def authorized_body(scope: Scope, receive: Receive) -> bytes:
    """The request's body, once its API key passed (else the refusal is raised), for the
    lean routes: the same check as the routers' dependency."""
    key = next((v.decode("latin-1") for k, v in scope["headers"] if k == _KEY_HEADER), None)
    refused = api_key_refusal(scope["app"].state.settings, key)
    if refused is not None:
        raise refused
    return await _read_body(receive)


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


__all__ = ["PATH", "FastPersonalize", "RouteTemplate", "authorized_body"]
