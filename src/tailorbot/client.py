"""The Python client of a tailorbot server, sync (:class:`Client`) and async (:class:`AsyncClient`).

Every method returns a typed result (the API's own response models) and raises a
:class:`TailorbotError` subclass carrying the HTTP status, the error code, the message and the
per-field problems the server reported.

    from tailorbot.client import Client

    with Client("http://127.0.0.1:8000", api_key=None) as tb:
        tb.put_user("u1", {"tier": "gold", "name": "Ada"})
        decision = tb.personalize("u1", "s1", "my card has not arrived yet")
        print(decision.intent.name, decision.response.text)
        tb.feedback(decision.decision_id, rating=5, resolved=True)
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel

from tailorbot.api.schemas import FeaturesResponse, IngestResponse, ProfileResponse, Readiness
from tailorbot.events.identifiers import ID_PATTERN
from tailorbot.services.decisions.schemas import (
    ExperimentReport,
    FeedbackResponse,
    PersonalizeResponse,
)

ModelT = TypeVar("ModelT", bound=BaseModel)
_ID = re.compile(ID_PATTERN)
API_KEY_HEADER = "X-API-Key"


class TailorbotError(Exception):
    """An error answer of the server (or no answer at all: ``status`` 0)."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        problems: list[dict[str, Any]] | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.problems = problems or []
        self.retry_after = retry_after


class InvalidRequest(TailorbotError):
    """400, 413 or 422: the request was refused; ``problems`` says which field and why
    (``status`` 0: the client refused it before sending, e.g. a user id no URL can carry)."""


class AuthError(TailorbotError):
    """401 or 403: missing or wrong API key."""


class NotFoundError(TailorbotError):
    """404: unknown user or decision."""


class OverloadedError(TailorbotError):
    """429: the stream processor lags; retry after ``retry_after`` seconds."""


class UnavailableError(TailorbotError):
    """503 (a backend is down, no model trained yet), or the server could not be reached."""


_BY_STATUS: dict[int, type[TailorbotError]] = {
    400: InvalidRequest,
    413: InvalidRequest,
    422: InvalidRequest,
    401: AuthError,
    403: AuthError,
    404: NotFoundError,
    429: OverloadedError,
    503: UnavailableError,
}


def _user_path(user_id: str, tail: str = "") -> str:
    """The user's URL path. An id the server would refuse (``u1?x``, ``u1#x``, ``../u1``) is
    refused here, before it could end or change the path and name another user; the dots of
    a valid id are escaped, or ``..`` would be read as a path step."""
    if not isinstance(user_id, str) or len(user_id) > 128 or _ID.fullmatch(user_id) is None:
        reason = "must be 1-128 of the characters A-Z a-z 0-9 _ . : @ -"
        raise InvalidRequest(
            0,
            "invalid_input",
            f"user_id {user_id!r} {reason}",
            [{"field": "user_id", "reason": reason}],
        )
    return f"/v1/users/{quote(user_id, safe='').replace('.', '%2E')}{tail}"


def _raise_for(response: httpx.Response) -> None:
    if response.status_code < 400:
        return
    try:
        body = response.json()
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    detail = body.get("detail")
    message = body.get("message") or (detail if isinstance(detail, str) else response.text)
    retry = response.headers.get("Retry-After")
    cls = _BY_STATUS.get(response.status_code, TailorbotError)
    raise cls(
        response.status_code,
        body.get("error", "http_error"),
        message,
        body.get("problems"),
        float(retry) if retry else None,
    )


def _parse(model: type[ModelT], response: httpx.Response) -> ModelT:
    _raise_for(response)
    return model.model_validate(response.json())


def _events_body(events: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    return {"events": [dict(e) for e in events]}


def _personalize_body(
    user_id: str,
    session_id: str,
    message: str,
    context: Mapping[str, Any] | None,
    last_bot_message: str | None,
) -> dict[str, Any]:
    # Validation is the server's: a bad value comes back as InvalidRequest naming the field.
    body: dict[str, Any] = {"user_id": user_id, "session_id": session_id, "message": message}
    if last_bot_message is not None:
        body["last_bot_message"] = last_bot_message
    return body if context is None else {**body, "context": dict(context)}


def _feedback_body(decision_id: str, signals: Mapping[str, Any]) -> dict[str, Any]:
    return {"decision_id": decision_id, **{k: v for k, v in signals.items() if v is not None}}


def _headers(api_key: str | None) -> dict[str, str]:
    return {API_KEY_HEADER: api_key} if api_key else {}


def _unreachable(exc: httpx.TransportError) -> UnavailableError:
    return UnavailableError(0, "unreachable", f"cannot reach the tailorbot server: {exc}")


class Client:
    """Blocking client; use as a context manager or call :meth:`close`."""

    def __init__(self, base_url: str, *, api_key: str | None = None, timeout: float = 10.0) -> None:
        self.base_url = base_url
        self._http = httpx.Client(base_url=base_url, headers=_headers(api_key), timeout=timeout)

    def _call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            return self._http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise _unreachable(exc) from exc

    def send_events(
        self, events: Iterable[Mapping[str, Any]], *, partial: bool = False
    ) -> IngestResponse:
        params = {"partial": "true"} if partial else None
        return _parse(
            IngestResponse,
            self._call("POST", "/v1/events", json=_events_body(events), params=params),
        )

    def put_user(self, user_id: str, profile: Mapping[str, Any]) -> ProfileResponse:
        return _parse(ProfileResponse, self._call("PUT", _user_path(user_id), json=dict(profile)))

    def features(self, user_id: str) -> FeaturesResponse:
        return _parse(FeaturesResponse, self._call("GET", _user_path(user_id, "/features")))

    def delete_user(self, user_id: str) -> None:
        _raise_for(self._call("DELETE", _user_path(user_id)))

    def personalize(
        self,
        user_id: str,
        session_id: str,
        message: str,
        context: Mapping[str, Any] | None = None,
        last_bot_message: str | None = None,
    ) -> PersonalizeResponse:
        """``last_bot_message``: the bot's message the customer replies to (see the API)."""
        body = _personalize_body(user_id, session_id, message, context, last_bot_message)
        return _parse(PersonalizeResponse, self._call("POST", "/v1/personalize", json=body))

    def feedback(self, decision_id: str, **signals: Any) -> FeedbackResponse:
        body = _feedback_body(decision_id, signals)
        return _parse(FeedbackResponse, self._call("POST", "/v1/feedback", json=body))

    def experiment(self) -> ExperimentReport:
        return _parse(ExperimentReport, self._call("GET", "/v1/experiment"))

    def schema(self) -> dict[str, Any]:
        response = self._call("GET", "/v1/schema")
        _raise_for(response)
        return dict(response.json())

    def ready(self) -> Readiness:
        return _parse(Readiness, self._call("GET", "/readyz"))

    def healthy(self) -> bool:
        return self._call("GET", "/healthz").status_code == 200

    def metrics(self) -> str:
        response = self._call("GET", "/metrics")
        _raise_for(response)
        return response.text

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncClient:
    """The same calls as :class:`Client`, awaitable."""

    def __init__(self, base_url: str, *, api_key: str | None = None, timeout: float = 10.0) -> None:
        self.base_url = base_url
        self._http = httpx.AsyncClient(
            base_url=base_url, headers=_headers(api_key), timeout=timeout
        )

    async def _call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            return await self._http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise _unreachable(exc) from exc

    async def send_events(
        self, events: Iterable[Mapping[str, Any]], *, partial: bool = False
    ) -> IngestResponse:
        params = {"partial": "true"} if partial else None
        response = await self._call("POST", "/v1/events", json=_events_body(events), params=params)
        return _parse(IngestResponse, response)

    async def put_user(self, user_id: str, profile: Mapping[str, Any]) -> ProfileResponse:
        response = await self._call("PUT", _user_path(user_id), json=dict(profile))
        return _parse(ProfileResponse, response)

    async def features(self, user_id: str) -> FeaturesResponse:
        return _parse(FeaturesResponse, await self._call("GET", _user_path(user_id, "/features")))

    async def delete_user(self, user_id: str) -> None:
        _raise_for(await self._call("DELETE", _user_path(user_id)))

    async def personalize(
        self,
        user_id: str,
        session_id: str,
        message: str,
        context: Mapping[str, Any] | None = None,
        last_bot_message: str | None = None,
    ) -> PersonalizeResponse:
        """``last_bot_message``: the bot's message the customer replies to (see the API)."""
        body = _personalize_body(user_id, session_id, message, context, last_bot_message)
        return _parse(PersonalizeResponse, await self._call("POST", "/v1/personalize", json=body))

    async def feedback(self, decision_id: str, **signals: Any) -> FeedbackResponse:
        body = _feedback_body(decision_id, signals)
        return _parse(FeedbackResponse, await self._call("POST", "/v1/feedback", json=body))

    async def experiment(self) -> ExperimentReport:
        return _parse(ExperimentReport, await self._call("GET", "/v1/experiment"))

    async def schema(self) -> dict[str, Any]:
        response = await self._call("GET", "/v1/schema")
        _raise_for(response)
        return dict(response.json())

    async def ready(self) -> Readiness:
        return _parse(Readiness, await self._call("GET", "/readyz"))

    async def healthy(self) -> bool:
        return (await self._call("GET", "/healthz")).status_code == 200

    async def metrics(self) -> str:
        response = await self._call("GET", "/metrics")
        _raise_for(response)
        return response.text

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
