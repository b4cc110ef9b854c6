"""Dependencies, as ``Annotated`` aliases: ``def route(users: UsersDep, user_id: UserId)``.

The runtime (the composition root) and the settings live on ``app.state`` (built by the
app's lifespan), so a route never reaches for globals and takes only the service it uses.
The providers are ``async`` so that FastAPI calls them inline instead of hopping to its
thread pool for each one.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Path, Request, Security
from fastapi.security import APIKeyHeader
from pydantic import AfterValidator

from tailorbot._heap import freeze_long_lived
from tailorbot.api.offload import run_blocking
from tailorbot.config import Settings
from tailorbot.errors import Unavailable
from tailorbot.events.identifiers import ID_PATTERN, check_pseudonymous
from tailorbot.integrations.chatwoot_bot import ChatwootBot
from tailorbot.integrations.profiles import ProfileUpdater
from tailorbot.integrations.rasa import RasaEventMapper
from tailorbot.integrations.rasa_domain import RasaResponses
from tailorbot.kb.repository import KBRepository
from tailorbot.metrics import Metrics
from tailorbot.runtime import Runtime
from tailorbot.services.decisions import DecisionService
from tailorbot.services.health import HealthService
from tailorbot.services.ingestion import IngestionService
from tailorbot.services.users import UserService

API_KEY_HEADER = "X-API-Key"


def _runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


async def get_ingestion(request: Request) -> IngestionService:
    return _runtime(request).ingestion


async def get_users(request: Request) -> UserService:
    return _runtime(request).users


async def get_health(request: Request) -> HealthService:
    return _runtime(request).health


async def load_decider(app: Any) -> DecisionService:
    """Build and start the app's decision service once; raises ``ModelMissing`` (503, saying
    how to train one) while the data directory has no intent model."""
    state = app.state
    async with state.decider_lock:
        if state.decider is None:
            state.decider = await run_blocking(state, _load_for_serving, state.runtime)
    loaded: DecisionService = state.decider
    return loaded


def _load_for_serving(runtime: Runtime) -> DecisionService:
    """The decision service, with the server process's heap frozen after it: the models and
    the KB stay, and no full collection should rescan them (see _heap.py)."""
    service = runtime.load_decisions()
    freeze_long_lived()
    return service


async def get_decider(request: Request) -> DecisionService:
    """The decision service. Without a model at start-up each call looks again, so a model
    trained while the server runs is picked up without a restart."""
    return await get_decider_of(request.app)


async def get_decider_of(app: Any) -> DecisionService:
    decider: DecisionService | None = app.state.decider
    if decider is not None:
        return decider
    return await load_decider(app)


async def get_kb(request: Request) -> KBRepository:
    return _runtime(request).kb


async def get_kb_reload(request: Request) -> Callable[[], None]:
    """Makes this process serve the live KB's newest version now."""
    return _runtime(request).reload_kb


async def get_rasa_mapper(request: Request) -> RasaEventMapper:
    return _runtime(request).rasa_mapper()


async def get_rasa_responses(request: Request) -> RasaResponses | None:
    """The Rasa domain's responses, read when the app started; None without ``rasa_domain``."""
    return _runtime(request).rasa_responses


async def get_profile_updater(request: Request) -> ProfileUpdater:
    runtime = _runtime(request)
    return ProfileUpdater(runtime.stores.profiles, runtime.users)


async def get_chatwoot_bot(request: Request) -> ChatwootBot:
    """The Chatwoot Agent Bot; 503 until ``chatwoot_url`` and ``chatwoot_token`` are set."""
    runtime = _runtime(request)
    if runtime.chatwoot is None:
        raise Unavailable(
            "the Chatwoot integration is not configured: set TAILORBOT_CHATWOOT_URL and "
            "TAILORBOT_CHATWOOT_TOKEN"
        )
    decider = await get_decider(request)
    return ChatwootBot(
        decider,
        runtime.chatwoot,
        runtime.ingestion,
        ProfileUpdater(runtime.stores.profiles, runtime.users),
        runtime.stores.decisions,
    )


async def get_settings(request: Request) -> Settings:
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
    refused = api_key_refusal(settings, key)
    if refused is not None:
        raise refused


def api_key_refusal(settings: Settings, key: str | None) -> HTTPException | None:
    """Why ``key`` is refused (401 missing, 403 wrong), or None when it may pass."""
    if settings.api_key is None:
        return None
    if not key:
        return HTTPException(401, f"missing API key: send it in the {API_KEY_HEADER} header")
    if not secrets.compare_digest(key.encode(), settings.api_key.get_secret_value().encode()):
        return HTTPException(403, f"invalid API key in the {API_KEY_HEADER} header")
    return None


IngestionDep = Annotated[IngestionService, Depends(get_ingestion)]
KBDep = Annotated[KBRepository, Depends(get_kb)]
KBReloadDep = Annotated[Callable[[], None], Depends(get_kb_reload)]
RasaMapperDep = Annotated[RasaEventMapper, Depends(get_rasa_mapper)]
RasaResponsesDep = Annotated[RasaResponses | None, Depends(get_rasa_responses)]
ProfileUpdaterDep = Annotated[ProfileUpdater, Depends(get_profile_updater)]
UsersDep = Annotated[UserService, Depends(get_users)]
HealthDep = Annotated[HealthService, Depends(get_health)]
DeciderDep = Annotated[DecisionService, Depends(get_decider)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]
ApiKey = Depends(require_api_key)

UserId = Annotated[
    str,
    Path(
        min_length=1,
        max_length=128,
        pattern=ID_PATTERN,
        description="The user's id, as sent in events (pseudonymous: never PII-shaped).",
        examples=["u_123"],
    ),
    AfterValidator(check_pseudonymous),
]
