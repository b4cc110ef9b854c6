"""Request and response models of the data-plane API (the event models live in events/).

Handlers answer with :class:`~tailorbot.api.responses.OrjsonResponse` for speed; these models
document the answers in the OpenAPI schema (``/docs``).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field, TypeAdapter

from tailorbot.events.profile import UserProfile
from tailorbot.events.schema import EVENT_TYPES, Event

COMPONENTS_REF = "#/components/schemas/{model}"


class ProblemOut(BaseModel):
    index: int | None = Field(description="Position of the event in the batch, if any.")
    field: str = Field(description="Dotted path of the offending field.")
    reason: str


class ErrorResponse(BaseModel):
    """Every 4xx/5xx answer has this shape (never a stack trace)."""

    error: str = Field(description="Machine-readable code, e.g. invalid_input, overloaded.")
    message: str = Field(description="What went wrong, for humans.")
    problems: list[ProblemOut] = Field(default_factory=list)


class FieldError(BaseModel):
    field: str
    reason: str


class EventStatus(BaseModel):
    index: int
    status: Literal["accepted", "rejected", "duplicate"]
    event_id: str | None = None
    duplicate_of: int | None = Field(
        None, description="A duplicate: the index of the same event earlier in the batch."
    )
    partition: int | None = Field(None, description="Log partition the event went to.")
    offset: int | None = Field(None, description="Its offset in that partition.")
    errors: list[FieldError] | None = Field(None, description="Why it was rejected.")


class IngestResponse(BaseModel):
    accepted: int
    rejected: int
    duplicates: int = Field(
        0, description="Repeats of an earlier event of the batch (same event_id and content)."
    )
    results: list[EventStatus] = Field(description="One status per submitted event, in order.")


class EventBatch(BaseModel):
    """Several events in one request (at most ``max_batch_events``)."""

    events: list[Event] = Field(min_length=1)


class Freshness(BaseModel):
    partition: int
    offset: int = Field(description="Offset of the last event applied to these features.")
    event_time: str = Field(description="Timestamp of the newest applied event (UTC).")
    updated_at: str = Field(description="When the stream processor wrote the record (UTC).")


class FeaturesResponse(BaseModel):
    user_id: str
    features: dict[str, Any] = Field(description="See docs/features.md for every field.")
    freshness: Freshness


class ProfileResponse(BaseModel):
    user_id: str
    profile: UserProfile


class Health(BaseModel):
    status: Literal["ok"] = "ok"
    version: str


class Readiness(BaseModel):
    ready: bool
    checks: dict[str, Any] = Field(description="log, store, lag (records behind), worker.")


class SchemaResponse(BaseModel):
    event_types: list[str]
    free_text_fields: list[str] = Field(description="Fields (and string metadata) redacted.")
    limits: dict[str, float]
    schemas: dict[str, Any] = Field(description="JSON Schema of every event type.")


def events_openapi() -> tuple[dict[str, Any], dict[str, Any]]:
    """The ``requestBody`` of ``POST /v1/events`` and the component schemas it refers to.

    The route parses its body itself (one orjson pass, one validation), so FastAPI cannot
    derive this from a parameter.
    """
    defs = TypeAdapter(EventBatch).json_schema(ref_template=COMPONENTS_REF)
    components = defs.pop("$defs", {})
    components["EventBatch"] = defs
    one_of = [{"$ref": COMPONENTS_REF.format(model=t.__name__)} for t in EVENT_TYPES]
    one_of.append({"$ref": COMPONENTS_REF.format(model="EventBatch")})
    body = {
        "required": True,
        "description": 'One event object, or `{"events": [...]}` (a bare JSON array works too).',
        "content": {"application/json": {"schema": {"oneOf": one_of}}},
    }
    return body, components
