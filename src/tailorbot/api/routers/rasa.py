"""``/v1/integrations/rasa/...``: Rasa's tracker events and its NLG endpoint."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from tailorbot.api.deps import (
    DeciderDep,
    IngestionDep,
    ProfileUpdaterDep,
    RasaMapperDep,
    RasaResponsesDep,
)
from tailorbot.api.errors import error_responses
from tailorbot.api.offload import off_loop
from tailorbot.api.responses import OrjsonResponse
from tailorbot.api.routers.events import parse_events_body
from tailorbot.errors import EngineError, InvalidInput, Problem
from tailorbot.integrations.nlg import NLGResponder, parse_nlg_request
from tailorbot.integrations.profiles import ProfileUpdater
from tailorbot.integrations.rasa import RasaBatch

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
    if not raw:  # as on /v1/events: Rasa's broker publishes one event per message, never none
        raise InvalidInput(
            "no events: send one Rasa event or a list with at least one",
            problems=[Problem(None, "events", "empty batch")],
        )
    batch = mapper.map(raw)
    # Every profile change is checked before anything is stored: all or nothing.
    await off_loop(request, _check_profiles, profiles, batch)
    accepted = 0
    if batch.events:
        try:
            result = await off_loop(request, ingestion.ingest, batch.events)
        except EngineError as exc:
            raise _at_input_indexes(exc, batch.event_indexes) from exc
        accepted = result.accepted
    updated = 0
    if batch.profiles:
        updated = await off_loop(request, _write_profiles, profiles, batch, raw)
    body = {
        "accepted": accepted,
        "skipped": batch.skipped,
        "profiles_updated": updated,
        "event_ids": [event["event_id"] for event in batch.events],
    }
    return OrjsonResponse(body, status_code=202)


def _check_profiles(profiles: ProfileUpdater, batch: RasaBatch) -> None:
    """:class:`InvalidInput` naming the slot event of each value a profile would refuse
    (writes nothing)."""
    problems: list[Problem] = []
    for user_id, fields in batch.profiles.items():
        try:
            profiles.check(user_id, fields)
        except InvalidInput as exc:
            problems.extend(
                Problem(batch.index_of(user_id, p.field), "value", f"{p.field}: {p.reason}")
                for p in exc.problems
            )
    if problems:
        problems.sort(key=lambda p: p.index if p.index is not None else -1)
        raise InvalidInput(
            f"{len(problems)} slot value(s) do not fit the profile", problems=problems
        )


def _write_profiles(profiles: ProfileUpdater, batch: RasaBatch, raw: list[Any]) -> int:
    # Merged again with the profile as stored now: a change made meanwhile (a consent
    # withdrawn through PUT /v1/users) is kept, not overwritten by the checked copy. A slot
    # set before the user's erasure (a re-sent batch) is not written: it went with them.
    dated = batch.field_times(raw)
    return sum(
        profiles.update(user_id, profiles.since_erasure(user_id, fields, dated.get(user_id, {})))
        for user_id, fields in batch.profiles.items()
    )


def _at_input_indexes(exc: EngineError, indexes: list[int]) -> EngineError:
    """``exc`` with its problems' indexes (of the mapped events) turned into the indexes of
    the Rasa events they came from (skipped ones shift them)."""
    problems = [
        Problem(
            indexes[p.index] if p.index is not None and p.index < len(indexes) else p.index,
            p.field,
            p.reason,
            p.too_large,
        )
        for p in exc.problems
    ]
    return type(exc)(exc.message, problems=problems, retry_after=exc.retry_after)


@router.post(
    "/v1/integrations/rasa/nlg",
    summary="Rasa NLG endpoint: the message of a response",
    responses=error_responses(400, 401, 403, 404, 413, 422, 429, 503),
)
async def rasa_nlg(
    request: Request,
    body: dict[str, Any],
    decider: DeciderDep,
    mapper: RasaMapperDep,
    responses: RasaResponsesDep,
) -> Response:
    """Rasa's NLG-server request (`response`, `arguments`, `tracker`, `channel`) answered
    with Rasa's NLG response, the whole message Rasa sends. A KB template whose id is the
    response name (e.g. `utter_card_arrival`), else the template of `<intent>` for
    `utter_<intent>`: the variant tailorbot's bandit chose for this customer
    (`tracker.sender_id`), text only, recorded as a decision; the customer's message is
    logged once even when Rasa's event broker sends it too. Else the response of the Rasa
    domain (`rasa_domain`), rendered as Rasa would (channel, conditions, slots), with its
    buttons, image and custom payload, no decision recorded; a response in neither is a 404.
    Without a domain configured: the template of the customer's intent."""
    nlg_request = parse_nlg_request(body)
    answer = await off_loop(request, NLGResponder(decider, mapper, responses).answer, nlg_request)
    return OrjsonResponse(answer.body)
