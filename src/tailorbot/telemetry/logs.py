"""Structured logs: one JSON object per line, each with the request id and the trace id.

:func:`configure_logging` (called by ``tailorbot serve`` / ``worker`` and the app factory's
multi-process path, never at import) sends every logger, uvicorn's included, to stderr
through :class:`JsonFormatter` (``log_format = "json"``, the default) or
:class:`HumanFormatter` (``"human"``). The request middleware opens a
:class:`RequestContext` per request: the ``X-Request-ID`` it was sent (or a new one) and the
W3C ``traceparent`` it was sent, so that lines logged while handling the request carry both,
and the trace id of the current OpenTelemetry span when tracing is on.

No PII: each line's message and traceback go through the same redaction as the events
(e-mail addresses, phone, card and IBAN numbers...), the access line names the route
template (``/v1/users/{user_id}``), never the path, and a user id is logged only as
:func:`user_ref`, a short one-way digest.

>>> import logging, io
>>> stream = io.StringIO()
>>> handler = logging.StreamHandler(stream)
>>> handler.setFormatter(JsonFormatter())
>>> log = logging.getLogger("tailorbot.doctest")
>>> log.addHandler(handler); log.propagate = False
>>> with request_context("req-1", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"):
...     log.warning("card 4111 1111 1111 1111 of %s declined", user_ref("u_42"))
>>> line = json.loads(stream.getvalue())
>>> line["request_id"], line["trace_id"], "4111" in line["message"]
('req-1', '4bf92f3577b34da6a3ce929d0e0e4736', False)
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import logging
import re
import secrets
import sys
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

from tailorbot.config import Settings
from tailorbot.events.redact import Redactor

TRACEPARENT = re.compile(r"^[0-9a-f]{2}-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}$")
REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,64}$")
# Fields a record may add (``logger.info(..., extra={...})``); anything else is left out.
EXTRA_FIELDS = ("event", "method", "route", "status", "duration_ms", "user", "worker", "count")
HANDLER_NAME = "tailorbot"

_prefix = secrets.token_hex(4)
_sequence = itertools.count(1)


class RequestContext:
    """What the log lines of one request share; the ids are made only when first needed."""

    __slots__ = ("_request_id", "_trace_id", "traceparent")

    def __init__(self, request_id: str | None, traceparent: str | None) -> None:
        self._request_id = request_id
        self._trace_id: str | None = None
        self.traceparent = traceparent

    @property
    def request_id(self) -> str:
        if self._request_id is None:
            self._request_id = f"{_prefix}-{next(_sequence):x}"
        return self._request_id

    def trace_id(self) -> str:
        """The trace id of the ``traceparent`` header; without one, a new random id (W3C
        format), so that the request's lines still share a trace id."""
        if self._trace_id is None:
            match = TRACEPARENT.match(self.traceparent or "")
            self._trace_id = match.group(1) if match else secrets.token_hex(16)
        return self._trace_id


_current: ContextVar[RequestContext | None] = ContextVar("tailorbot_request", default=None)
# Set by the tracing module when tracing is on: the current span's trace id, or None.
span_trace_id: Callable[[], str | None] = lambda: None  # noqa: E731


def open_request(headers: list[tuple[bytes, bytes]]) -> RequestContext:
    """The request's context from its headers (``X-Request-ID``, ``traceparent``), made current."""
    request_id = traceparent = None
    for name, value in headers:
        if name == b"x-request-id":
            text = value.decode("latin-1")
            request_id = text if REQUEST_ID.match(text) else None
        elif name == b"traceparent":
            traceparent = value.decode("latin-1")
    context = RequestContext(request_id, traceparent)
    _current.set(context)
    return context


@contextlib.contextmanager
def request_context(request_id: str | None, traceparent: str | None = None) -> Iterator[None]:
    token = _current.set(RequestContext(request_id, traceparent))
    try:
        yield
    finally:
        _current.reset(token)


def current_ids() -> tuple[str | None, str | None]:
    """(request id, trace id) of the code running now; None outside a request / trace."""
    context = _current.get()
    trace_id = span_trace_id()
    if context is None:
        return None, trace_id
    return context.request_id, trace_id or context.trace_id()


def user_ref(user_id: str) -> str:
    """A short one-way digest standing for a user id in logs (the same id, the same ref)."""
    return "u:" + hashlib.sha256(b"tailorbot-log:" + user_id.encode()).hexdigest()[:12]


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request_id, trace_id, extras."""

    def __init__(self, redactor: Redactor | None = None) -> None:
        super().__init__()
        self.redactor = redactor or Redactor()

    def format(self, record: logging.LogRecord) -> str:
        request_id, trace_id = current_ids()
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": self.redactor.redact(record.getMessage()),
            "request_id": request_id,
            "trace_id": trace_id,
        }
        for name in EXTRA_FIELDS:
            if name in record.__dict__:
                line[name] = record.__dict__[name]
        if record.exc_info:
            line["exception"] = self.redactor.redact(self.formatException(record.exc_info))
        return json.dumps(line, default=str, ensure_ascii=False)


class HumanFormatter(logging.Formatter):
    """``time level logger [request trace] message``, for a terminal; redacted the same way."""

    def __init__(self, redactor: Redactor | None = None) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s %(ids)s%(message)s")
        self.redactor = redactor or Redactor()

    def format(self, record: logging.LogRecord) -> str:
        request_id, trace_id = current_ids()
        ids = f"[{request_id or '-'} {trace_id or '-'}] " if request_id or trace_id else ""
        record.ids = ids
        extras = " ".join(f"{k}={record.__dict__[k]}" for k in EXTRA_FIELDS if k in record.__dict__)
        text = super().format(record)
        return self.redactor.redact(f"{text} {extras}" if extras else text)


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is when a record comes (it may be replaced)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property  # type: ignore[override]
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass


def configure_logging(
    settings: Settings, stream: Any = None, level: str | None = None
) -> logging.Handler:
    """Route every log record to ``stream`` (stderr) in the settings' format, at ``level``
    (default ``settings.log_level``; the access lines are at info); idempotent."""
    redactor = Redactor.from_settings(settings)
    formatter: logging.Formatter = (
        HumanFormatter(redactor) if settings.log_format == "human" else JsonFormatter(redactor)
    )
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == HANDLER_NAME]:
        root.removeHandler(old)
    handler = logging.StreamHandler(stream) if stream is not None else _StderrHandler()
    handler.set_name(HANDLER_NAME)
    handler.setFormatter(formatter)
    root.addHandler(handler)
    root.setLevel((level or settings.log_level).upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
    # The access line comes from the request middleware (route template, request id); the
    # uvicorn one would print the raw path, which may hold a user id.
    logging.getLogger("uvicorn.access").disabled = True
    logging.getLogger("tailorbot.access").disabled = not settings.access_log
    for name in ("httpx", "httpx2", "httpcore"):  # INFO lines with full URLs, so user ids
        logging.getLogger(name).setLevel(max(logging.WARNING, root.level))
    return handler
