"""The hot routes on a lean path: ``POST /v1/personalize`` and ``POST /v1/feedback``
answered by plain ASGI.

A chatbot calls ``/v1/personalize`` for every customer message, inside its own reply budget,
and ``/v1/feedback`` for most of the decisions it got. FastAPI's per-request machinery (the
dependency graph, body parsing through its request model, its exception middleware) costs
more CPU than the decision itself, and about as much as the feedback's own work, so these
middlewares answer the two routes directly: the API key check, ``model_validate_json`` of
the same request model, the service's answer, and an orjson body, with the same error shapes
as every other route (``api/errors.py``). The FastAPI routes stay registered: they document
the routes in the OpenAPI schema and serve them when ``fast_routes`` is off.

They sit inside the body-limit and metrics middleware, so both still apply.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from pydantic import BaseModel, ValidationError
from starlette.types import ASGIApp, Receive, Scope, Send

from tailorbot.api.deps import API_KEY_HEADER, api_key_refusal, get_decider_of
from tailorbot.api.errors import response_for_error, validation_response
from tailorbot.api.offload import run_feedback, run_personalize
from tailorbot.api.responses import JsonAnswer
from tailorbot.services.decisions.schemas import FeedbackRequest, PersonalizeRequest

PATH = "/v1/personalize"
FEEDBACK_PATH = "/v1/feedback"
_KEY_HEADER = API_KEY_HEADER.lower().encode()
# What FastAPI reports for a required body that was not sent.
_MISSING_BODY = {"type": "missing", "loc": ("body",), "msg": "Field required", "input": None}


@dataclass(frozen=True, slots=True)
class RouteTemplate:
    """What the metrics middleware reads from ``scope["route"]``: the route template."""

    path: str


class LeanPost:
    """One POST route answered here (``path``: its ``model`` is the body, :meth:`answer`
    makes the response); every other request is passed to ``app``."""

    path: ClassVar[str]
    model: ClassVar[type[BaseModel]]

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._route = RouteTemplate(self.path)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != self.path or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        scope["route"] = self._route
        try:
            response = await self._respond(scope["app"], await authorized_body(scope, receive))
        except Exception as exc:  # noqa: BLE001 - mapped like every route's errors
            response = response_for_error(exc, "POST", self.path)
        await response(scope, receive, send)

    async def _respond(self, app: Any, body: bytes) -> Any:
        """In FastAPI's order: a body that is not JSON (400), then the route's dependency on
        the decision service (503 until a model is trained), then the body's fields (422; an
        empty body is a missing one)."""
        request = None
        errors: list[dict[str, Any]] = [_MISSING_BODY]
        if body:
            try:
                request, errors = self.model.model_validate_json(body), []
            except ValidationError as exc:
                errors = [{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_url=False)]
                if any(e["type"] == "json_invalid" for e in errors):
                    return validation_response(errors)
        decider = await get_decider_of(app)
        if request is None:
            return validation_response(errors)
        return await self.answer(app, decider, request)

    async def answer(self, app: Any, decider: Any, request: Any) -> Any:
        raise NotImplementedError


class FastPersonalize(LeanPost):
    """Answers ``POST /v1/personalize``."""

    path = PATH
    model = PersonalizeRequest

    async def answer(self, app: Any, decider: Any, request: PersonalizeRequest) -> Any:
        # On the decision pool (or the loop itself): the decision reads the stores.
        return JsonAnswer(await run_personalize(app.state, decider, request))


class FastFeedback(LeanPost):
    """Answers ``POST /v1/feedback``."""

    path = FEEDBACK_PATH
    model = FeedbackRequest

    async def answer(self, app: Any, decider: Any, request: FeedbackRequest) -> Any:
        # Off the event loop, in a batch with the others (it writes twice).
        answer = await run_feedback(app.state, decider, request)
        return JsonAnswer(answer.model_dump(mode="json"))


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


__all__ = [
    "FEEDBACK_PATH",
    "PATH",
    "FastFeedback",
    "FastPersonalize",
    "LeanPost",
    "RouteTemplate",
    "authorized_body",
]
