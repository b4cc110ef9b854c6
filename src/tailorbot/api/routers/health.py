"""``/healthz`` (the process is up) and ``/readyz`` (it can serve: backends reachable)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from tailorbot import __version__
from tailorbot.api.deps import HealthDep, get_decider_of
from tailorbot.api.offload import off_loop
from tailorbot.api.responses import OrjsonResponse
from tailorbot.api.schemas import Health, Readiness
from tailorbot.services.decisions import ModelMissing

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="Liveness", response_model=Health)
async def healthz() -> Response:
    """Always 200 while the process serves requests (no API key needed)."""
    return OrjsonResponse({"status": "ok", "version": __version__})


@router.get(
    "/readyz",
    summary="Readiness",
    response_model=Readiness,
    responses={503: {"model": Readiness, "description": "A backend is unreachable."}},
)
async def readyz(request: Request, health: HealthDep) -> Response:
    """200 when the event log and the online store answer and an intent model is loaded (no
    API key needed; reasons name no path or address); the body also reports the stream
    processor's lag and whether its worker runs here."""
    report = await off_loop(request, health.readiness)
    if request.app.state.settings.ready_requires_model:
        try:
            await get_decider_of(request.app)  # loads a model trained since start-up
            report["checks"]["intent_model"] = "ok"
        except ModelMissing:
            report["ready"] = False
            report["checks"]["intent_model"] = "missing: train one with `tailorbot train`"
    return OrjsonResponse(report, status_code=200 if report["ready"] else 503)
