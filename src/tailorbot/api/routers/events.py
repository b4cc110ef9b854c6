"""``POST /v1/events``: validate, redact and append conversation events to the log."""

from __future__ import annotations

import json
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from tailorbot.api.deps import IngestionDep
from tailorbot.api.errors import error_responses
from tailorbot.api.offload import off_loop
from tailorbot.api.responses import OrjsonResponse
from tailorbot.api.schemas import IngestResponse, events_openapi
from tailorbot.errors import BadRequest, InvalidInput, Problem
from tailorbot.services.ingestion import IngestionService
from tailorbot.services.ports import IngestResult

router = APIRouter(tags=["events"])

# A 64-bit integer has at most 19 digits: a body with a run of 19 may hold a longer one.
# Found by mapping every digit to "0" and looking for 19 zeros (two C loops: 20x faster than
# a regular expression, which tries a match at every digit of the body).
_DIGITS_TO_ZERO = bytes.maketrans(b"123456789", b"000000000")
_NINETEEN_DIGITS = b"0" * 19


def _has_long_number(body: bytes) -> bool:
    """Whether ``body`` holds a run of 19 or more ASCII digits.

    >>> _has_long_number(b'{"n": 12345678901234567890}'), _has_long_number(b'{"n": 1e18}')
    (True, False)
    """
    return _NINETEEN_DIGITS in body.translate(_DIGITS_TO_ZERO)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


_BODY_HELP = 'send one event object or {"events": [...]}'


def parse_events_body(body: bytes) -> list[Any]:
    """The raw events of a request body: one object, ``{"events": [...]}`` or a JSON array."""
    if not body.strip():
        raise BadRequest(f"request body is empty; {_BODY_HELP}")
    try:
        document = orjson.loads(body)
        if _has_long_number(body):
            # orjson reads an integer beyond 64 bits as a float, silently: read such a body
            # with the json module, which keeps it an int, so the schema can refuse it
            document = json.loads(body, parse_constant=_no_constant)
    except (orjson.JSONDecodeError, ValueError) as exc:
        raise BadRequest(f"request body is not valid JSON: {exc}") from exc
    except RecursionError:
        # the json module nests one C call per level and gives up well before orjson's 1024
        raise BadRequest("request body is nested too deeply to be read") from None
    if isinstance(document, list):
        return document
    if not isinstance(document, dict):
        raise InvalidInput(
            f"request body must be a JSON object; {_BODY_HELP}",
            problems=[Problem(None, "(body)", f"got a JSON {type(document).__name__}")],
        )
    if "events" not in document or "type" in document:
        return [document]
    extra = sorted(set(document) - {"events"})
    if extra:
        raise InvalidInput(
            "a batch body has only the key 'events'",
            problems=[Problem(None, name, "not allowed beside 'events'") for name in extra],
        )
    events = document["events"]
    if not isinstance(events, list):
        raise InvalidInput(
            "'events' must be a list of event objects",
            problems=[Problem(None, "events", "must be a JSON array")],
        )
    return events


def ingest_body(ingestion: IngestionService, body: bytes, partial: bool) -> IngestResult:
    """Ingest the events of a request body (blocking: call it off the event loop)."""
    return ingestion.ingest(parse_events_body(body), partial=partial)


def ingest_response(result: IngestResult, partial: bool) -> Response:
    """The answer to an ingestion: 202, or 200 with a status per event when ``partial``."""
    body = {
        "accepted": result.accepted,
        "rejected": result.rejected,
        "duplicates": result.duplicates,
        "results": result.results,
    }
    return OrjsonResponse(body, status_code=200 if partial else 202)


@router.post(
    "/v1/events",
    status_code=202,
    summary="Ingest conversation events",
    response_model=IngestResponse,
    responses={
        200: {"model": IngestResponse, "description": "With `?partial=true`: per-event status."},
        **error_responses(400, 401, 403, 408, 413, 415, 422, 429, 503),
    },
    openapi_extra={"requestBody": events_openapi()[0]},
)
async def post_events(
    request: Request,
    ingestion: IngestionDep,
    partial: Annotated[
        bool,
        Query(
            description="Store the valid events and report each invalid one, instead of "
            "rejecting the whole batch."
        ),
    ] = False,
) -> Response:
    """Validate each event against its type's schema, redact PII (e-mails, phone numbers,
    cards, IBANs, IP addresses) from free text, and append the batch to the event log.

    By default a batch is all-or-nothing: one bad event rejects it (422 listing every
    `{index, field, reason}`; 413 when a text is too long) and nothing is stored. With
    `?partial=true` the valid events are stored and the answer (200) has a status per
    event. Accepted events are durable when the answer arrives; features follow within
    milliseconds (see `freshness` on the features endpoint).
    """
    raw = await request.body()
    # In a thread: parsing a large batch and a slow backend must not stall the event loop
    # (and with it /healthz).
    result = await off_loop(request, ingest_body, ingestion, raw, partial)
    return ingest_response(result, partial)
