"""``/v1/integrations/rasa/...``: Rasa's tracker events and its NLG endpoint."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from tailorbot.api.deps import DeciderDep, IngestionDep, ProfileUpdaterDep, RasaMapperDep
from tailorbot.api.errors import error_responses
from tailorbot.api.offload import off_loop
from tailorbot.api.responses import OrjsonResponse
from tailorbot.api.routers.events import parse_events_body
from tailorbot.integrations.nlg import NLGResponder, nlg_response, parse_nlg_request

router = APIRouter(tags=["integrations"])


@router.post(
    "/v1/integrations/rasa/events",
    status_code=202,
    summary="Ingest Rasa tracker events",
    responses=error_responses(400, 401, 403, 413, 422, 429, 503),
)
async def rasa_events(
    request: Request,
    ingestion: IngestionDep,
    mapper: RasaMapperDep,
    profiles: ProfileUpdaterDep,
) -> Response:
    """One Rasa event or a list (the JSON Rasa's event broker publishes: classic
    `{"sender_id", "event", "timestamp", ...}` or the envelope shape with `conversation_id`
    and one payload key). `user` and `bot` become messages, `session_started` a session
    start, `restart` a session end, hand-over actions a `handoff`, configured slots profile
    fields (`rasa_slot_attributes`); the rest is skipped and counted. All or nothing: a
    bad event is a 422 naming its `index` and `field`, and nothing is stored."""
    raw = parse_events_body(await request.body())
    batch = mapper.map(raw)
    accepted = 0
    if batch.events:
        result = await off_loop(request, ingestion.ingest, batch.events)
        accepted = result.accepted
    updated = 0
    for user_id, fields in batch.profiles.items():
        updated += await off_loop(request, profiles.update, user_id, fields)
    body = {
        "accepted": accepted,
        "skipped": batch.skipped,
        "profiles_updated": updated,
        "event_ids": [event["event_id"] for event in batch.events],
    }
    return OrjsonResponse(body, status_code=202)


@router.post(
    "/v1/integrations/rasa/nlg",
    summary="Rasa NLG endpoint: the personalized text of a response",
    responses=error_responses(400, 401, 403, 413, 422, 429, 503),
)
async def rasa_nlg(
    request: Request, body: dict[str, Any], decider: DeciderDep, mapper: RasaMapperDep
) -> Response:
    """Rasa's NLG-server request (`response`, `arguments`, `tracker`, `channel`) answered
    with Rasa's NLG response (`{"text": ...}` plus empty rich-response keys): the variant
    tailorbot's bandit chose for this customer (`tracker.sender_id`) of the KB template named
    like the response (e.g. `utter_card_arrival`), else of the intent's template. The choice
    is recorded as a decision; the customer's message is logged once even when Rasa's
    event broker sends it too."""
    nlg_request = parse_nlg_request(body)
    answer = await off_loop(request, NLGResponder(decider, mapper).answer, nlg_request)
    return OrjsonResponse(nlg_response(answer.text))
