"""The event schema: one pydantic model per event type, discriminated by ``type``.

Bounds that depend on settings (timestamp skew, metadata size) are checked against a
validation context built by :func:`validation_context`; without a context only the
static rules apply (handy for reading back events that were already accepted).

>>> ev = EVENT_ADAPTER.validate_python({
...     "type": "rating", "user_id": "u1", "session_id": "s1",
...     "timestamp": "2026-01-01T10:00:00Z", "score": 5})
>>> ev.type, ev.score, ev.timestamp.isoformat()
('rating', 5, '2026-01-01T10:00:00+00:00')
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from functools import cache, lru_cache
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    TypeAdapter,
    ValidationInfo,
    field_validator,
    model_validator,
)

from tailorbot.compiled import native
from tailorbot.events.identifiers import Identifier
from tailorbot.events.random_hex import RandomHex
from tailorbot.events.values import free_pairs_problem, without_nul

__all__ = [
    "EVENT_ADAPTER",
    "EVENT_TYPES",
    "Event",
    "EventBase",
    "Identifier",
    "checked_event",
    "json_schemas",
]
MetadataValue = str | int | float | bool | None
METADATA_KEY_CHARS = 64
_random_suffix = RandomHex(10)  # 80 bits per id, one getrandom call per 400 ids


def new_event_id() -> str:
    """A new event or decision id: 32 hex digits like ``uuid4().hex``, in UUIDv7's layout:
    the milliseconds since the epoch (48 bits), then 80 random bits.

    Ids made close together sort together, so an index keyed by them (the embedded store's
    decisions) takes a batch of new ids on its last pages instead of a random page per id:
    half the CPU of a decision's write once the store holds 150,000 decisions
    (docs/benchmarks.md). 80 random bits per millisecond keep the ids unique and unguessable.

    >>> a, b = new_event_id(), new_event_id()
    >>> len(a), a != b, int(a[:12], 16) <= int(b[:12], 16)
    (32, True, True)
    """
    return f"{time.time_ns() // 1_000_000:012x}{_random_suffix()}"


def validation_context(
    *,
    now: datetime | None = None,
    max_future_skew_s: float = 300.0,
    max_event_age_s: float = 30 * 86400.0,
    max_metadata_keys: int = 32,
    max_metadata_value_chars: int = 512,
) -> dict[str, Any]:
    """The context :data:`EVENT_ADAPTER` validates against at the door.

    Bounds wider than the calendar can hold (``max_event_age_s=1e15``) mean "no bound".

    >>> ctx = validation_context(now=datetime(2026, 1, 1, tzinfo=UTC), max_event_age_s=1e15)
    >>> ctx["earliest"].year, ctx["latest"].isoformat()
    (1, '2026-01-01T00:05:00+00:00')
    """
    now = now or datetime.now(UTC)
    return {
        "now": now,
        "earliest": _shifted(now, -max_event_age_s),
        "latest": _shifted(now, max_future_skew_s),
        "max_metadata_keys": max_metadata_keys,
        "max_metadata_value_chars": max_metadata_value_chars,
    }


def _shifted(moment: datetime, seconds: float) -> datetime:
    """``moment`` plus ``seconds``, clamped to the representable UTC range."""
    shift = _shift(seconds)
    if shift is not None:
        try:
            return moment + shift
        except OverflowError:
            pass
    return _UTC_MAX if seconds > 0 else _UTC_MIN


@lru_cache(maxsize=64, typed=True)  # the settings' two bounds, for every event at the door
def _shift(seconds: float) -> timedelta | None:
    """``timedelta(seconds=seconds)``, None past its range."""
    try:
        return timedelta(seconds=seconds)
    except OverflowError:
        return None


_UTC_MIN = datetime.min.replace(tzinfo=UTC)
_UTC_MAX = datetime.max.replace(tzinfo=UTC)


class EventBase(BaseModel):
    """Fields every event carries."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    event_id: Identifier = Field(
        default_factory=new_event_id, description="Client-supplied for idempotency, else assigned."
    )
    user_id: Identifier
    session_id: Identifier
    timestamp: AwareDatetime = Field(description="UTC ISO-8601, e.g. 2026-01-01T10:00:00Z.")
    channel: Annotated[str, Field(min_length=1, max_length=32, pattern=r"^[a-z0-9_\-]+$")] = "chat"
    metadata: dict[Annotated[str, Field(max_length=METADATA_KEY_CHARS)], MetadataValue] = Field(
        default_factory=dict, description="Bounded free key/value pairs."
    )

    @model_validator(mode="before")
    @classmethod
    def _no_nul_characters(cls, value: Any) -> Any:
        # U+0000 has no meaning in a chat and PostgreSQL's jsonb refuses it: removed here from
        # free text; in an id (or any other field) it is refused below, not merged away
        if isinstance(value, dict):
            return without_nul(value, FREE_TEXT_FIELDS, FREE_PAIRS_FIELDS)
        return value

    @field_validator("timestamp", mode="before")
    @classmethod
    def _timestamp_is_a_date_time(cls, value: Any) -> Any:
        # pydantic would read a number, or a string of digits, as seconds or milliseconds
        # since 1970: a guess at the client's unit. Every ISO-8601 date-time it accepts holds
        # a ':' (HH:MM), so one test refuses both.
        if isinstance(value, int | float) or (isinstance(value, str) and ":" not in value):
            raise ValueError(
                "timestamp must be an ISO-8601 date-time with its UTC offset, e.g. "
                "2026-01-01T10:00:00Z (a number is not read as an epoch time)"
            )
        return value

    @field_validator("timestamp")
    @classmethod
    def _timestamp_in_bounds(cls, value: datetime, info: ValidationInfo) -> datetime:
        try:
            value = value.astimezone(UTC)
        except OverflowError:
            # 9999-12-31T23:59:59-14:00 is past year 9999 once in UTC: no datetime holds it
            raise ValueError(
                "timestamp is outside the range 0001-01-01T00:00:00Z to "
                "9999-12-31T23:59:59Z once converted to UTC"
            ) from None
        ctx = info.context
        if ctx:
            now: datetime = ctx["now"]
            if value > ctx["latest"]:
                raise ValueError(
                    f"timestamp is {(value - now).total_seconds():.0f}s in the future; "
                    f"at most {(ctx['latest'] - now).total_seconds():.0f}s is accepted"
                )
            if value < ctx["earliest"]:
                raise ValueError(
                    f"timestamp is older than the accepted "
                    f"{(now - ctx['earliest']).total_seconds() / 86400:g} days"
                )
        return value

    @field_validator("metadata", mode="before")
    @classmethod
    def _metadata_bounded(cls, value: Any, info: ValidationInfo) -> Any:
        # before pydantic's union: it would turn a 2**70 into a float, a NaN into null
        ctx = info.context or {}
        problem = free_pairs_problem(
            "metadata",
            value,
            max_keys=ctx.get("max_metadata_keys", 32),
            max_key_chars=METADATA_KEY_CHARS,
            max_value_chars=ctx.get("max_metadata_value_chars", 512),
        )
        if problem is not None:
            raise ValueError(problem)
        return value


class SessionStarted(EventBase):
    type: Literal["session_started"] = "session_started"


class Message(EventBase):
    type: Literal["message"] = "message"
    role: Literal["customer", "bot", "agent"]
    text: str = Field(min_length=1)
    intent: Identifier | None = None
    confidence: StrictFloat | None = Field(None, ge=0.0, le=1.0)


class ArticleViewed(EventBase):
    type: Literal["article_viewed"] = "article_viewed"
    article_id: Identifier


class ArticleFeedback(EventBase):
    type: Literal["article_feedback"] = "article_feedback"
    article_id: Identifier
    helpful: StrictBool


class Rating(EventBase):
    type: Literal["rating"] = "rating"
    score: StrictInt = Field(ge=1, le=5, description="CSAT, 1 (bad) to 5 (good).")


class Resolution(EventBase):
    type: Literal["resolution"] = "resolution"
    resolved: StrictBool
    article_id: Identifier | None = Field(None, description="The article that resolved it, if any.")


class Handoff(EventBase):
    type: Literal["handoff"] = "handoff"
    reason: str = Field("", max_length=1000)


class SessionEnded(EventBase):
    type: Literal["session_ended"] = "session_ended"


class IntentLabel(EventBase):
    """An agent or an annotation tool confirms or corrects the intent of a logged message.

    It names the message by its ``event_id`` (``message_event_id``) or by the decision that
    answered it (``decision_id``); ``user_id`` and ``session_id`` are the message's. The
    newest label of a message wins. It is an annotation, not customer activity: the feature
    state does not count it.
    """

    type: Literal["intent_label"] = "intent_label"
    intent: Identifier
    message_event_id: Identifier | None = None
    decision_id: Identifier | None = None
    source: Annotated[str, Field(min_length=1, max_length=32, pattern=r"^[a-z0-9_\-]+$")] = "agent"

    @model_validator(mode="after")
    def _names_a_message(self) -> IntentLabel:
        if self.message_event_id is None and self.decision_id is None:
            raise ValueError("an intent_label needs message_event_id or decision_id")
        return self


EVENT_TYPES: tuple[type[EventBase], ...] = (
    SessionStarted,
    Message,
    ArticleViewed,
    ArticleFeedback,
    Rating,
    Resolution,
    Handoff,
    SessionEnded,
    IntentLabel,
)

Event = Annotated[
    SessionStarted
    | Message
    | ArticleViewed
    | ArticleFeedback
    | Rating
    | Resolution
    | Handoff
    | SessionEnded
    | IntentLabel,
    Field(discriminator="type"),
]

EVENT_ADAPTER: TypeAdapter[Event] = TypeAdapter(Event)

E = TypeVar("E", bound=EventBase)


def checked_event(model: type[E], values: dict[str, Any]) -> E:
    """``model`` holding ``values`` as they are, without the validation pass.

    For an event tailorbot builds from values it has checked already (the decision
    service's message event: the request's validated fields, ids it made, the time now),
    where validating again costs several times building the object (docs/benchmarks.md,
    thirty-second session). ``values`` gives every field, in the model's order, with the
    type and value validation would leave (an aware datetime in UTC, free text without
    U+0000); tests hold the result to :data:`EVENT_ADAPTER`'s. It sets what
    ``BaseModel.model_construct`` sets, without that method's loop over the fields (a test
    pins ``BaseModel``'s slots to :data:`MODEL_SLOTS`), in one compiled call where the
    extension is built.

    >>> event = checked_event(SessionEnded, {
    ...     "event_id": "e1", "user_id": "u1", "session_id": "s1",
    ...     "timestamp": datetime(2026, 1, 1, tzinfo=UTC), "channel": "chat", "metadata": {},
    ...     "type": "session_ended"})
    >>> raw = {**event.model_dump(), "timestamp": "2026-01-01T00:00:00Z"}
    >>> event == EVENT_ADAPTER.validate_python(raw)
    True
    """
    loops = native()
    if loops is not None:
        built = loops.checked_model(model, values, _field_names(model), MODEL_SLOTS)
        if built is not None:
            event: E = built  # annotated: cast() is a call at every event
            return event
    return checked_event_in_python(model, values)


# What BaseModel.model_construct sets on an instance: its fields' dict, the names of the
# fields set, no extra fields, no private attributes (in this order: checked_model's).
MODEL_SLOTS = ("__dict__", "__pydantic_fields_set__", "__pydantic_extra__", "__pydantic_private__")


def checked_event_in_python(model: type[E], values: dict[str, Any]) -> E:
    """:func:`checked_event` in Python: the reference the compiled ``checked_model``
    (csrc/checked.c) is tested against, and the path that refuses values that are not
    exactly the model's fields."""
    if values.keys() != _field_names(model):
        raise ValueError(f"a checked {model.__name__} needs exactly its fields, not {list(values)}")
    event = model.__new__(model)
    set_slot = object.__setattr__  # the models are frozen
    for slot, value in zip(MODEL_SLOTS, (values, set(values), None, None), strict=True):
        set_slot(event, slot, value)
    return event


@cache
def _field_names(model: type[EventBase]) -> frozenset[str]:
    """``model``'s field names (read once: the class attribute is a computed property)."""
    return frozenset(model.model_fields)


# Free-text fields that redaction scans (metadata string values are scanned too).
FREE_TEXT_FIELDS = ("text", "reason")
# Free key/value fields: their keys and string values are free text too (U+0000 removed).
FREE_PAIRS_FIELDS = ("metadata",)
# Events about other events (annotations): logged and archived, not customer activity.
ANNOTATION_TYPES = frozenset({"intent_label"})


def event_type_names() -> list[str]:
    return [t.model_fields["type"].default for t in EVENT_TYPES]


def json_schemas() -> dict[str, Any]:
    """JSON Schema of every event type, keyed by type name (served at GET /v1/schema)."""
    return {
        t.model_fields["type"].default: t.model_json_schema(mode="validation") for t in EVENT_TYPES
    }
