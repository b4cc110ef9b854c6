"""``/v1/personalize``, ``/v1/feedback`` and ``/v1/experiment``: the decision plane."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from tailorbot.api.deps import DeciderDep
from tailorbot.api.errors import error_responses
from tailorbot.api.offload import off_loop, run_feedback, run_personalize
from tailorbot.api.responses import OrjsonResponse
from tailorbot.services.decisions.schemas import (
    ExperimentReport,
    FeedbackRequest,
    FeedbackResponse,
    PersonalizeRequest,
    PersonalizeResponse,
)

router = APIRouter(tags=["decisions"])


@router.post(
    "/v1/personalize",
    summary="Decide what to answer this customer",
    response_model=PersonalizeResponse,
    responses=error_responses(400, 401, 403, 408, 413, 415, 422, 429, 503),
)
async def personalize(request: Request, body: PersonalizeRequest, decider: DeciderDep) -> Response:
    """For this customer's message: the intent (top 5, with confidence) and whether to fall
    back or hand off; the knowledge articles most likely to solve it, each with its score and
    reasons; the response variant chosen by the contextual bandit, rendered, with the
    probability it had of being chosen. Without personalization consent no per-user feature
    is used (`user.personalized` is false). The message is logged (redacted) with its intent.
    503 until an intent model is trained (`tailorbot train`)."""
    answer = await run_personalize(request.app.state, decider, body)
    return OrjsonResponse(PersonalizeResponse.model_validate(answer).model_dump(mode="json"))


@router.post(
    "/v1/feedback",
    summary="Report how a decision went",
    response_model=FeedbackResponse,
    responses=error_responses(400, 401, 403, 404, 408, 413, 415, 422, 429, 503),
)
async def feedback(request: Request, body: FeedbackRequest, decider: DeciderDep) -> Response:
    """Rating (CSAT 1-5), resolution, and helpful / unhelpful / clicked article for a
    `decision_id`. The first feedback of a decision teaches the bandit and is logged as events;
    repeating it changes nothing (`applied: false`). 404 for an unknown decision."""
    answer = await run_feedback(request.app.state, decider, body)
    return OrjsonResponse(answer.model_dump(mode="json"))


@router.get(
    "/v1/experiment",
    summary="A/B report: personalized policy versus control",
    response_model=ExperimentReport,
    responses=error_responses(401, 403, 503),
)
async def experiment(request: Request, decider: DeciderDep) -> Response:
    """CSAT, resolution rate and reward of each arm with 95 % confidence intervals, and the
    lift of the personalized policy over the control (see `experiment_holdout`)."""
    report = await off_loop(request, decider.experiment_report)
    return OrjsonResponse(report.model_dump(mode="json"))
