"""The FastAPI app factory.

``create_app(settings)`` builds an app whose lifespan opens a :class:`~tailorbot.runtime.Runtime`
(and its worker threads, when ``settings.run_worker_in_server``) and stops it on shutdown.
Under ``uvicorn --factory`` (several worker processes) each process calls ``create_app()``
with no argument and reads the same settings from ``TAILORBOT_*`` variables.

Adding a router: write ``routers/<name>.py`` with a module-level ``router`` and add one line
to :data:`ROUTERS`.

>>> import tempfile
>>> from fastapi.testclient import TestClient
>>> from tailorbot.config import Settings
>>> app = create_app(Settings.load(data_dir=tempfile.mkdtemp(), run_worker_in_server=False))
>>> with TestClient(app) as client:
...     client.get("/healthz").json()["status"]
'ok'
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import inspect
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.openapi.utils import get_openapi
from starlette.types import ASGIApp

from tailorbot import __version__
from tailorbot._heap import freeze_long_lived
from tailorbot.api.access_log import keep_user_ids_out_of_access_logs
from tailorbot.api.dashboard import DashboardData
from tailorbot.api.deps import ApiKey, load_decider
from tailorbot.api.errors import install_error_handlers
from tailorbot.api.fast import FastFeedback, FastPersonalize
from tailorbot.api.fast_ingest import FastIngest
from tailorbot.api.middleware import (
    BodyLimitMiddleware,
    RequestMetricsMiddleware,
    TracingMiddleware,
)
from tailorbot.api.offload import (
    DecisionPool,
    make_limiter,
    run_blocking,
)
from tailorbot.api.routers import (
    chatwoot,
    dashboard,
    decisions,
    docs,
    events,
    health,
    kb,
    llm_tools,
    metrics,
    rasa,
    schema,
    users,
)
from tailorbot.api.schemas import events_openapi
from tailorbot.api.server_metrics import server_registry
from tailorbot.api.shedding import LoadShedMiddleware
from tailorbot.api.state import AppState
from tailorbot.config import Settings
from tailorbot.metrics import Metrics
from tailorbot.runtime import Runtime
from tailorbot.services.decisions import ModelMissing
from tailorbot.telemetry.logs import configure_logging
from tailorbot.telemetry.siblings import SiblingExposition
from tailorbot.telemetry.threads import ThreadCpuCollector
from tailorbot.telemetry.tracing import Tracing
from tailorbot.telemetry.tracing import requested as tracing_requested

logger = logging.getLogger(__name__)

# (router, needs the API key when one is configured). One line per router.
ROUTERS: tuple[tuple[APIRouter, bool], ...] = (
    (health.router, False),
    (events.router, True),
    (users.router, True),
    (decisions.router, True),
    (schema.router, True),
    (metrics.router, True),
    (rasa.router, True),
    (chatwoot.router, False),  # its signature, else the key in its URL (routers/chatwoot.py)
    (llm_tools.router, True),
    (kb.router, True),
    (dashboard.router, False),  # signs in by header or cookie (see routers/dashboard.py)
)

DESCRIPTION = """\
Real-time personalization for customer-support chatbots.

Send conversation events to **POST /v1/events**; they are validated, stripped of PII and
appended to a user-partitioned log. A stream processor turns them into per-user features
within milliseconds, served by **GET /v1/users/{user_id}/features**.

Errors always have the shape `{"error": code, "message": ..., "problems": [{index, field,
reason}]}`. When the server has an API key, send it as `X-API-Key` (all routes but
`/healthz`, `/readyz` and the Chatwoot webhook, which its signature authenticates, or the
key as `?api_key=` when it is not signed).
"""

TAGS = [
    {"name": "events", "description": "Ingest conversation events; their schemas."},
    {"name": "users", "description": "Profiles, real-time features, erasure."},
    {"name": "decisions", "description": "Personalize an answer; report how it went; A/B."},
    {"name": "health", "description": "Liveness, readiness and Prometheus metrics."},
    {"name": "integrations", "description": "Rasa, Chatwoot and LLM bots (docs/integrations.md)."},
    {"name": "kb", "description": "The live knowledge base: read and change it without a restart."},
]


def create_app(
    settings: Settings | None = None,
    *,
    metrics: Metrics | None = None,
    tracing: Tracing | None = None,
) -> FastAPI:
    """A new app serving ``settings`` (from ``TAILORBOT_*`` variables when omitted: then this
    is a server process of ``tailorbot serve --workers N``, which also sets up its logs)."""
    if settings is None:
        settings = Settings.load()
        configure_logging(settings)
    metrics = metrics if metrics is not None else Metrics()
    _count_thread_cpu(metrics)
    # Tracing from the OTEL_* variables unless given; None (off) by default.
    owned_tracing = tracing is None and tracing_requested()
    if owned_tracing:
        tracing = Tracing.from_env()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.blocking = make_limiter(settings.blocking_threads)
        app.state.decisions = DecisionPool(settings.resolved_decision_threads())
        app.state.decisions.start(asyncio.get_running_loop())
        runtime = await run_blocking(app.state, Runtime, settings, metrics, tracing)
        app.state.runtime = runtime
        app.state.decider = None
        app.state.decider_lock = asyncio.Lock()
        # Models load in the background: /healthz answers at once, and decisions that arrive
        # meanwhile wait for the load (the same lock) instead of failing.
        loading = asyncio.create_task(_load_quietly(app))
        app.state.siblings = None
        try:
            app.state.siblings = _serve_to_siblings(settings, metrics)
            runtime.start_workers()
            yield
        finally:
            try:
                await _stop(app, loading, runtime)
            finally:
                if app.state.siblings is not None:  # last: its final exposition counts all
                    await run_blocking(app.state, app.state.siblings.close)
                if owned_tracing and tracing is not None:
                    tracing.shutdown()

    app = _App(
        **_fastapi_telemetry_off(),
        title="tailorbot",
        version=__version__,
        description=DESCRIPTION,
        openapi_tags=TAGS,
        lifespan=lifespan,
        openapi_url=None,  # served by routers/docs.py, behind the key when one is set
        docs_url=None,
        redoc_url=None,
    )
    app.state = AppState()  # read on every request: its values as plain attributes
    app.state.settings = settings
    app.state.metrics = metrics
    # the whole server's figures, summed over the processes of `serve --workers N`
    app.state.dashboard = DashboardData(
        metrics,
        lambda: server_registry(app.state).collect(),
        min_step_s=settings.dashboard_step_s,
    )
    keep_user_ids_out_of_access_logs()
    for router, protected in ROUTERS:
        app.include_router(router, dependencies=[ApiKey] if protected else [])
    app.include_router(docs.router, dependencies=[] if settings.public_docs else [ApiKey])
    guarded = [route for router, protected in ROUTERS if protected for route in router.routes]
    install_error_handlers(app, guarded)
    _add_middleware(app, settings, metrics, tracing)
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app


def _fastapi_telemetry_off() -> dict[str, Any]:
    """FastAPI's own OpenTelemetry off, where the installed FastAPI has it: the app traces
    and counts its requests itself (tracing, metrics), and FastAPI's instrumentation, on
    whenever a global provider is set, would add a second span per request and checks the
    providers on every request. Older releases (the project accepts them) have none."""
    if "telemetry" not in inspect.signature(FastAPI.__init__).parameters:
        return {}
    return {"telemetry": {"tracing": False, "metrics": False, "logs": False}}


class _App(FastAPI):
    """FastAPI with the app's own middleware outside FastAPI's error layers instead of inside.

    The lean routes (``fast.py``, ``fast_ingest.py``) answer within the app's middleware and
    map their own errors, so their requests skip FastAPI's three outer layers (the server
    error handler, its telemetry of exceptions, its body limit) and the routes behind them.
    Every other request passes the same middleware, then those layers as before; a 500 they
    send now carries the request id too.
    """

    def build_middleware_stack(self) -> ASGIApp:
        own, self.user_middleware = self.user_middleware, []
        try:
            app = super().build_middleware_stack()
        finally:
            self.user_middleware = own
        for cls, args, kwargs in reversed(own):
            app = cls(app, *args, **kwargs)
        return app


def _count_thread_cpu(metrics: Metrics) -> None:
    """``/metrics`` shows this server process's CPU by thread (event loop, decisions, recorder).
    Only the API process registers it (the merged exposition takes the worker process's own
    families from it, and every other family from the API: ``merged_exposition``)."""
    with contextlib.suppress(ValueError):  # already there: an app made again on one registry
        metrics.registry.register(ThreadCpuCollector())


async def _stop(app: FastAPI, loading: asyncio.Task[None], runtime: Runtime) -> None:
    """The lifespan's shutdown: the model load, the decisions, the runtime."""
    # Not cancelled: the loading thread would finish anyway and leave a started decision
    # service (its refresh thread polling closed stores) that nobody closes.
    with contextlib.suppress(Exception):
        await loading
    await run_blocking(app.state, app.state.decisions.close)
    if app.state.decider is not None:  # off the loop: it lets the last feedback batch finish
        await run_blocking(app.state, app.state.decider.close)
    try:  # the asyncio reads' connections, on this loop; the rest is closed regardless
        await runtime.stores.aclose()
    except Exception:
        logger.warning("closing the store's asyncio connections failed", exc_info=True)
    await run_blocking(app.state, runtime.stop)


def _serve_to_siblings(settings: Settings, metrics: Metrics) -> SiblingExposition | None:
    """With ``serve --workers N``: this process's metrics for the one a scrape reaches.
    Where its socket cannot be made (the folder removed under a running server), the
    process serves anyway, and every ``/metrics`` that would leave it out answers 503."""
    folder = settings.metrics_siblings_dir
    if folder is None:
        return None
    try:
        return SiblingExposition(folder, metrics.render)
    except OSError as exc:
        logger.error("cannot serve this process's metrics to its siblings in %s: %r", folder, exc)
        SiblingExposition.mark_unjoined(folder)  # the others' scrapes answer 503 meanwhile
        return None


def _add_middleware(
    app: FastAPI, settings: Settings, metrics: Metrics, tracing: Tracing | None
) -> None:
    if settings.fast_routes:
        # innermost: admission, body limit, metrics apply
        app.add_middleware(FastPersonalize)
        app.add_middleware(FastFeedback)
        app.add_middleware(FastIngest)
    # Starlette runs the last added outermost: metrics, then the body limit (a body over
    # max_body_bytes is a 413, never shed), then admission.
    app.add_middleware(
        LoadShedMiddleware,
        max_concurrent_requests=settings.max_concurrent_requests,
        max_inflight_body_bytes=settings.max_inflight_body_bytes,
        body_read_timeout_s=settings.body_read_timeout_s,
        retry_after_s=settings.shed_retry_after_s,
        metrics=metrics,
    )
    app.add_middleware(BodyLimitMiddleware, max_body_bytes=settings.max_body_bytes)
    app.add_middleware(RequestMetricsMiddleware, metrics=metrics)
    if tracing is not None:  # outermost: the span covers the whole request
        app.add_middleware(TracingMiddleware, tracing=tracing)


async def _load_quietly(app: FastAPI) -> None:
    try:
        await load_decider(app)  # then freezes the start-up heap (api/deps.py)
    except ModelMissing:  # personalize answers 503 until trained
        # The start-up heap (modules, the app, the KB) is as long-lived without a model: out
        # of full collections all the same. A server that only ingests walked all of it in
        # every full collection (12 % of its CPU at 20,000 events/s). Once per process (a
        # freeze is a full collection; tests start many apps in one process).
        if gc.get_freeze_count() == 0:
            await run_blocking(app.state, freeze_long_lived)


def _openapi(app: FastAPI) -> dict[str, Any]:
    """FastAPI's schema plus the event models that ``POST /v1/events`` refers to."""
    if app.openapi_schema is None:
        schema = get_openapi(
            title=app.title,
            version=app.version,
            description=app.description,
            routes=app.routes,
            tags=app.openapi_tags,
        )
        schema.setdefault("components", {}).setdefault("schemas", {}).update(events_openapi()[1])
        app.openapi_schema = schema
    return app.openapi_schema
