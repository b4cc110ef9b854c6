"""Identifiers that look like personal data are refused (the choice documented in
docs/architecture.md, "Privacy"): ids travel into the log, the store, the archive and
metric-free logs unredacted, so only pseudonymous ids are accepted."""

from __future__ import annotations

import random
import secrets
import uuid

import pytest
from pydantic import BaseModel, ValidationError

from tailorbot.events.identifiers import pii_kind_of
from tailorbot.events.schema import EVENT_ADAPTER, EVENT_TYPES
from tailorbot.services.decisions.schemas import FeedbackRequest, PersonalizeRequest

PII_SHAPED = [
    ("jane.doe@example.com", "email"),
    ("00-44-20-7946-0958", "phone"),
    ("415-555-2671", "phone"),
    ("020.7946.0958", "phone"),
    ("4111111111111111", "card"),
    ("4111-1111-1111-1111", "card"),
    ("GB82WEST12345698765432", "iban"),
    ("10.1.2.3", "ip"),
    ("2001:db8::1", "ip"),
    ("078-05-1120", "ssn"),
    ("user:jane@example.com", "email"),
    ("jane@example.com:0123456789abcdef0123456789abcdef", "email"),  # a token beside PII
]

PSEUDONYMOUS = [
    "u1",
    "user-4155552671",  # digits inside a longer id are no phone number
    "cust_000123",
    "sess:2026-01-01",
    "conversation:123:message:456",
    "4155552671",  # a bare digit run, like an order number
    "a1b2c3d4-e5f6-4711-8899-aabbccddeeff",
    "article-reset-password",
]


@pytest.mark.parametrize(("identifier", "kind"), PII_SHAPED)
def test_pii_shaped_ids_are_recognized(identifier: str, kind: str) -> None:
    assert pii_kind_of(identifier) == kind


@pytest.mark.parametrize("identifier", PSEUDONYMOUS)
def test_pseudonymous_ids_pass(identifier: str) -> None:
    assert pii_kind_of(identifier) is None


@pytest.mark.parametrize("field", ["user_id", "session_id", "event_id", "article_id"])
def test_an_event_with_a_pii_shaped_id_is_refused_naming_the_field(field: str) -> None:
    raw = {
        "type": "article_viewed",
        "user_id": "u1",
        "session_id": "s1",
        "article_id": "a1",
        "timestamp": "2026-01-01T10:00:00Z",
        field: "jane@example.com",
    }
    with pytest.raises(ValidationError) as caught:
        EVENT_ADAPTER.validate_python(raw)
    (error,) = caught.value.errors(include_url=False)
    assert error["loc"][-1] == field
    assert "looks like an e-mail address" in error["msg"]
    assert "jane" not in error["msg"]  # the reason never echoes the personal data


def test_generated_and_uuid_ids_are_never_refused() -> None:
    rng = random.Random(13)
    ids = [str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in range(20_000)]
    ids += [uuid.UUID(int=rng.getrandbits(128), version=4).hex for _ in range(20_000)]
    ids += [secrets.token_hex(16) for _ in range(5_000)]
    # the decision service's own event ids: "<uuid4 hex>-message", "<uuid4 hex>-rating"...
    ids += [f"{uuid.UUID(int=rng.getrandbits(128), version=4).hex}-message" for _ in range(20_000)]
    assert [i for i in ids if pii_kind_of(i)] == []


# The smallest valid body of each event type (besides the common fields), with every id set.
BODIES = {
    "message": {"role": "customer", "text": "hi", "intent": "card_arrival"},
    "article_viewed": {"article_id": "a1"},
    "article_feedback": {"article_id": "a1", "helpful": True},
    "rating": {"score": 4},
    "resolution": {"resolved": True, "article_id": "a1"},
    "intent_label": {"intent": "card_arrival", "message_event_id": "m1", "decision_id": "d1"},
}


def _id_fields(model: type[BaseModel]) -> list[str]:
    return [name for name in model.model_fields if name.endswith("_id") or name == "intent"]


EVENT_IDS = [
    (model.model_fields["type"].default, field)
    for model in EVENT_TYPES
    for field in _id_fields(model)
]
REQUEST_IDS = [
    (model, field) for model in (PersonalizeRequest, FeedbackRequest) for field in _id_fields(model)
]


@pytest.mark.parametrize(("kind", "field"), EVENT_IDS)
def test_every_id_of_every_event_type_is_checked(kind: str, field: str) -> None:
    common = {"event_id": "e1", "user_id": "u1", "session_id": "s1"}
    raw = {"type": kind, "timestamp": "2026-01-01T10:00:00Z", **common, **BODIES.get(kind, {})}
    EVENT_ADAPTER.validate_python(raw)  # valid as it is
    with pytest.raises(ValidationError) as caught:
        EVENT_ADAPTER.validate_python({**raw, field: "jane@example.com"})
    (error,) = caught.value.errors(include_url=False)
    assert error["loc"][-1] == field and "looks like an e-mail address" in error["msg"]


@pytest.mark.parametrize(("model", "field"), REQUEST_IDS)
def test_every_id_of_a_decision_request_is_checked(model: type[BaseModel], field: str) -> None:
    # rating: a feedback needs at least one signal (an empty one is a 422 of its own)
    raw = {"user_id": "u1", "session_id": "s1", "message": "hi", "decision_id": "d1", "rating": 5}
    raw = {k: v for k, v in raw.items() if k in model.model_fields}
    model.model_validate(raw)
    with pytest.raises(ValidationError) as caught:
        model.model_validate({**raw, field: "078-05-1120"})
    (error,) = caught.value.errors(include_url=False)
    assert error["loc"][-1] == field and "social security" in error["msg"]
