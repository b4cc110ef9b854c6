"""Errors of the engine, each carrying the HTTP status it maps to.

The API turns any :class:`EngineError` into ``{"error": code, "message": ..., "problems": [...]}``
with its ``http_status`` (and a ``Retry-After`` header when ``retry_after`` is set); the CLI
prints the message and exits non-zero. Raise these from any data-plane or decision code.

>>> err = InvalidInput("bad", problems=[Problem(0, "text", "missing")])
>>> err.http_status, err.problems[0].as_dict()
(422, {'index': 0, 'field': 'text', 'reason': 'missing'})
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from tailorbot.archive.base import ArchiveError
from tailorbot.log.base import LogError
from tailorbot.store.base import StoreError

RETRY_AFTER_S = 1  # what 429 and 503 answers suggest


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


@contextmanager
def backend_errors() -> Iterator[None]:
    """Turn :class:`LogError` / :class:`StoreError` / :class:`ArchiveError` into
    :class:`Unavailable` (503)."""
    try:
        yield
    except LogError as exc:
        raise Unavailable(f"event log unavailable: {exc}", retry_after=RETRY_AFTER_S) from exc
    except StoreError as exc:
        raise Unavailable(f"online store unavailable: {exc}", retry_after=RETRY_AFTER_S) from exc
    except ArchiveError as exc:
        raise Unavailable(f"archive unavailable: {exc}", retry_after=RETRY_AFTER_S) from exc
