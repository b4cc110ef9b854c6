"""``GET /v1/schema``: the JSON Schema of every event type and the limits at the door."""

from __future__ import annotations

import functools

from fastapi import APIRouter
from starlette.responses import Response

from tailorbot.api.deps import SettingsDep
from tailorbot.api.errors import error_responses
from tailorbot.api.responses import OrjsonResponse
from tailorbot.api.schemas import SchemaResponse
from tailorbot.events.schema import FREE_TEXT_FIELDS, event_type_names, json_schemas

router = APIRouter(tags=["events"])
_event_schemas = functools.cache(json_schemas)  # static; built on first use


@router.get(
    "/v1/schema",
    summary="Event schemas",
    response_model=SchemaResponse,
    responses=error_responses(401, 403, 503),
)
def get_schema(settings: SettingsDep) -> Response:
    """What `POST /v1/events` accepts: each event type's JSON Schema, the free-text fields
    that are redacted, and this server's size and time limits."""
    limits = {
        "max_body_bytes": settings.max_body_bytes,
        "max_batch_events": settings.max_batch_events,
        "max_text_chars": settings.max_text_chars,
        "max_metadata_keys": settings.max_metadata_keys,
        "max_metadata_value_chars": settings.max_metadata_value_chars,
        "max_future_skew_s": settings.max_future_skew_s,
        "max_event_age_s": settings.max_event_age_s,
    }
    return OrjsonResponse(
        {
            "event_types": event_type_names(),
            "free_text_fields": list(FREE_TEXT_FIELDS),
            "limits": limits,
            "schemas": _event_schemas(),
        }
    )
