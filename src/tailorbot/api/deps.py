"""Dependencies, as ``Annotated`` aliases: ``def route(engine: EngineDep, user_id: UserId)``.

The engine and settings live on ``app.state`` (built by the app's lifespan), so a route
never reaches for globals. The providers are ``async`` only so that FastAPI calls them inline
instead of hopping to its thread pool for each one.
"""

from __future__ import annotations

import secrets
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Path, Request, Security
from fastapi.security import APIKeyHeader
from starlette.concurrency import run_in_threadpool

from tailorbot.config import Settings
from tailorbot.decide import DecisionService, build_decision_service
from tailorbot.engine import Engine
from tailorbot.metrics import Metrics

API_KEY_HEADER = "X-API-Key"


async def get_engine(request: Request) -> Engine:
    engine: Engine = request.app.state.engine
    return engine


async def load_decider(app: Any) -> DecisionService:
    """Build and start the app's decision service once; raises ``ModelMissing`` (503, saying
    how to train one) while the data directory has no intent model."""
    state = app.state
    async with state.decider_lock:
        if state.decider is None:
            decider = await run_in_threadpool(build_decision_service, state.engine)
            await run_in_threadpool(decider.start)
            state.decider = decider
    loaded: DecisionService = state.decider
    return loaded


async def get_decider(request: Request) -> DecisionService:
    """The decision service. Without a model at start-up each call looks again, so a model
    trained while the server runs is picked up without a restart."""
    decider: DecisionService | None = request.app.state.decider
    if decider is not None:
        return decider
    return await load_decider(request.app)


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_metrics(request: Request) -> Metrics:
    metrics: Metrics = request.app.state.metrics
    return metrics


_api_key_scheme = APIKeyHeader(
    name=API_KEY_HEADER,
    auto_error=False,
    description="Required on every route but /healthz and /readyz when the server has a key.",
)


async def require_api_key(
    settings: Annotated[Settings, Depends(get_settings)],
    key: Annotated[str | None, Security(_api_key_scheme)],
) -> None:
    """401 without the header, 403 with a wrong key; a no-op when no key is configured."""
    if settings.api_key is None:
        return
    if not key:
        raise HTTPException(401, f"missing API key: send it in the {API_KEY_HEADER} header")
    if not secrets.compare_digest(key.encode(), settings.api_key.get_secret_value().encode()):
        raise HTTPException(403, f"invalid API key in the {API_KEY_HEADER} header")


EngineDep = Annotated[Engine, Depends(get_engine)]
DeciderDep = Annotated[DecisionService, Depends(get_decider)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]
ApiKey = Depends(require_api_key)

UserId = Annotated[
    str,
    Path(
        min_length=1,
        max_length=128,
        pattern=r"^[A-Za-z0-9_.:@\-]+$",
        description="The user's id, as sent in events.",
        examples=["u_123"],
    ),
]
