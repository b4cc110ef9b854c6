"""Errors of tailorbot, each carrying the HTTP status it maps to.

The API turns any :class:`EngineError` into ``{"error": code, "message": ..., "problems": [...]}``
with its ``http_status`` (and a ``Retry-After`` header when ``retry_after`` is set); the CLI
prints the message and exits non-zero. Raise these from any data-plane or decision code.

>>> err = InvalidInput("bad", problems=[Problem(0, "text", "missing")])
>>> err.http_status, err.problems[0].as_dict()
(422, {'index': 0, 'field': 'text', 'reason': 'missing'})
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

RETRY_AFTER_S = 1  # what 429 and 503 answers suggest
VALUE_ERROR_PREFIX = "Value error, "  # pydantic's, before our own validators' reasons


logger = logging.getLogger(__name__)


class EngineError(Exception):
    """An error with the HTTP status it maps to and, optionally, per-event problems."""

    http_status = 500
    code = "internal"

    def __init__(
        self,
        message: str,
        *,
        problems: Sequence[Problem] = (),
        retry_after: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.problems = list(problems)
        self.retry_after = retry_after


class BadRequest(EngineError):
    http_status = 400
    code = "bad_request"


class InvalidInput(EngineError):
    http_status = 422
    code = "invalid_input"


class PayloadTooLarge(EngineError):
    http_status = 413
    code = "payload_too_large"


class NotFound(EngineError):
    http_status = 404
    code = "not_found"


class Overloaded(EngineError):
    http_status = 429
    code = "overloaded"


class Unavailable(EngineError):
    http_status = 503
    code = "unavailable"


@dataclass(frozen=True, slots=True)
class Problem:
    """What is wrong with one field of one event (``index`` is None outside a batch)."""

    index: int | None
    field: str
    reason: str
    too_large: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {"index": self.index, "field": self.field, "reason": self.reason}


class BackendError(Exception):
    """A backend (log, store, archive) is unreachable or refused an operation.

    Each family subclasses it (``LogError``, ``StoreError``, ``ArchiveError``) and names
    itself in ``what``; :func:`backend_errors` turns any of them into a 503.
    """

    what = "backend"


class _BackendErrors:
    """:func:`backend_errors`' context manager. A class rather than a generator: every
    decision enters one, and ``contextlib.contextmanager`` costs a generator and a few
    calls each time. It keeps no state: one instance serves every thread."""

    __slots__ = ()

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: object, exc: BaseException | None, traceback: object) -> None:
        if isinstance(exc, BackendError):
            # the detail (a file path, host:port) is for the operator's log, not the client
            logger.warning("%s unavailable: %s", exc.what, exc)
            raise unavailable(exc) from exc


_BACKEND_ERRORS = _BackendErrors()


def backend_errors() -> _BackendErrors:
    """A context manager that turns any :class:`BackendError` into :class:`Unavailable` (503).

    >>> class StoreDown(BackendError):
    ...     what = "online store"
    >>> try:
    ...     with backend_errors():
    ...         raise StoreDown("connection refused")
    ... except Unavailable as exc:
    ...     print(exc.http_status, exc.message)
    503 online store unavailable
    """
    return _BACKEND_ERRORS


def unavailable(exc: BackendError) -> Unavailable:
    """The 503 to retry that a client gets for ``exc``, caused by it."""
    refused = Unavailable(f"{exc.what} unavailable", retry_after=RETRY_AFTER_S)
    refused.__cause__ = exc
    return refused


E = TypeVar("E", bound=BaseException)


def own_copy(exc: E) -> E:
    """A copy of ``exc`` for another thread to raise (one instance raised in several threads
    at once would mix their tracebacks), with the same type, arguments and cause."""
    try:
        own = copy.copy(exc)
    except Exception:  # noqa: BLE001 - an exception that cannot be copied is shared
        return exc
    own.__cause__ = exc.__cause__
    return own


def own_copies(exc: E, n: int) -> list[E]:
    """``exc`` for the first of ``n`` callers and :func:`own_copy` for each of the others."""
    return [exc if i == 0 else own_copy(exc) for i in range(n)]
