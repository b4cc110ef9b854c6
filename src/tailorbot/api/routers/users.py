"""``/v1/users/{user_id}``: profile, served features and erasure."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from tailorbot.api.deps import UserId, UsersDep
from tailorbot.api.errors import error_responses
from tailorbot.api.offload import off_loop
from tailorbot.api.responses import OrjsonResponse
from tailorbot.api.schemas import FeaturesResponse, ProfileResponse
from tailorbot.events.profile import UserProfile

router = APIRouter(tags=["users"])


@router.put(
    "/v1/users/{user_id}",
    summary="Set a user's profile",
    response_model=ProfileResponse,
    responses=error_responses(400, 401, 403, 408, 413, 415, 422, 503),
)
async def put_user(
    request: Request, user_id: UserId, profile: UserProfile, users: UsersDep
) -> Response:
    """Replace the user's attributes (tier, language, products, consent...).

    Setting `consent.personalization` to false deletes the user's feature record at once;
    their events stop counting until consent is given again.
    """
    await off_loop(request, users.put_profile, user_id, profile)
    return OrjsonResponse({"user_id": user_id, "profile": profile.model_dump(mode="json")})


@router.get(
    "/v1/users/{user_id}/features",
    summary="Get a user's real-time features",
    response_model=FeaturesResponse,
    responses=error_responses(401, 403, 404, 503),
)
async def get_features(request: Request, user_id: UserId, users: UsersDep) -> Response:
    """The user's windowed features as of now, with the log position and time of the last
    event they include (`freshness`). 404 when no event of the user was processed yet."""
    return OrjsonResponse(await off_loop(request, users.features, user_id))


@router.delete(
    "/v1/users/{user_id}",
    status_code=204,
    summary="Erase a user",
    responses=error_responses(401, 403, 503),
)
async def delete_user(request: Request, user_id: UserId, users: UsersDep) -> Response:
    """Forget the user everywhere: their log records, feature record, profile and
    decisions. Idempotent: erasing an unknown user succeeds too."""
    await off_loop(request, users.erase_user, user_id)
    return Response(status_code=204)
