"""``GET /dashboard``: a live page served by tailorbot itself, and the JSON it polls.

The page (``api/static/``: hand-written HTML, CSS and SVG-drawing JavaScript, no CDN, no build
step) polls ``GET /v1/dashboard/data`` as often as its answer's ``poll_s`` says (the
``dashboard_step_s`` setting, 2 s by default). The data comes from the server's Prometheus
metrics (:class:`~tailorbot.api.dashboard.DashboardData`; summed over the processes of
``serve --workers N``), the experiment report (the shared counters) and the loaded models;
nothing scans the log.

When the server has an API key, every dashboard route needs it: as ``X-API-Key``, or as the
cookie that the small sign-in form (``/dashboard/login``, where ``/dashboard`` redirects a
browser without it) sets, an HMAC of the key
(HttpOnly, SameSite=Strict), so a browser can open the page without sending headers.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from importlib import resources
from typing import Annotated, Any
from urllib.parse import parse_qs

import httpx
from fastapi import APIRouter, Depends, HTTPException, Path, Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from tailorbot.api.dashboard import DashboardData, lag_from_exposition
from tailorbot.api.deps import API_KEY_HEADER, SettingsDep
from tailorbot.api.errors import error_responses
from tailorbot.api.offload import off_loop
from tailorbot.api.responses import OrjsonResponse
from tailorbot.api.server_metrics import server_drift
from tailorbot.config import Settings
from tailorbot.telemetry.worker_metrics import worker_exposition

router = APIRouter(tags=["health"])
logger = logging.getLogger(__name__)
WORKER_TIMEOUT_S = 1.0

COOKIE = "tailorbot_dashboard"
STATIC_TYPES = {".js": "text/javascript", ".css": "text/css", ".html": "text/html"}
# The intent model's held-out figures worth a glance (names as its metadata has them; the
# evaluation module is not imported: it would load scikit-learn with the API).
MODEL_FIGURES = (
    "accuracy",
    "macro_f1",
    "in_scope_accuracy",
    "oos_recall",
    "oos_precision",
    "fallback_rate",
)


def _token(settings: Settings) -> str | None:
    """The cookie's value: an HMAC of the key (the key itself never sits in the browser)."""
    if settings.api_key is None:
        return None
    key = settings.api_key.get_secret_value().encode()
    return hmac.new(key, b"tailorbot-dashboard", hashlib.sha256).hexdigest()


def _signed_in(request: Request, settings: Settings) -> bool:
    if settings.api_key is None:
        return True
    header = request.headers.get(API_KEY_HEADER)
    key = settings.api_key.get_secret_value().encode()
    if header and secrets.compare_digest(header.encode(), key):
        return True
    cookie, token = request.cookies.get(COOKIE), _token(settings) or ""
    return cookie is not None and secrets.compare_digest(cookie.encode(), token.encode())


async def require_dashboard_key(request: Request, settings: SettingsDep) -> None:
    """401 unless the request carries the API key (header) or the dashboard cookie."""
    if not _signed_in(request, settings):
        raise HTTPException(401, f"sign in at /dashboard or send the {API_KEY_HEADER} header")


DashboardKey = Depends(require_dashboard_key)


def _static(name: str) -> bytes:
    return resources.files("tailorbot.api").joinpath("static", name).read_bytes()


@router.get("/dashboard", include_in_schema=False)
def dashboard_page(request: Request, settings: SettingsDep) -> Response:
    """The page; without the key, a redirect to the sign-in form."""
    if not _signed_in(request, settings):
        return RedirectResponse("/dashboard/login", status_code=303)
    return HTMLResponse(_static("dashboard.html"))


@router.get("/dashboard/login", include_in_schema=False)
def dashboard_login_form() -> Response:
    return HTMLResponse(_static("login.html"))


@router.post("/dashboard/login", include_in_schema=False)
async def dashboard_login(request: Request, settings: SettingsDep) -> Response:
    """The sign-in form: a right key sets the cookie and goes to the page; else 403."""
    form = parse_qs((await request.body()).decode("utf-8", "replace"))
    key = (form.get("key") or [""])[0]
    expected = settings.api_key.get_secret_value() if settings.api_key else ""
    token = _token(settings)
    if token is None:
        return RedirectResponse("/dashboard", status_code=303)
    if not secrets.compare_digest(key.encode(), expected.encode()):
        return HTMLResponse(_static("login.html"), status_code=403)
    response = RedirectResponse("/dashboard", status_code=303)
    response.set_cookie(
        COOKIE,
        token,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/",
    )
    return response


@router.get("/dashboard/static/{name}", include_in_schema=False, dependencies=[DashboardKey])
def dashboard_static(name: Annotated[str, Path(pattern=r"^[a-z0-9_\-]+\.(js|css)$")]) -> Response:
    try:
        body = _static(name)
    except FileNotFoundError:
        raise HTTPException(404, f"no dashboard asset {name!r}") from None
    suffix = name[name.rindex(".") :]
    return Response(body, media_type=STATIC_TYPES[suffix], headers={"Cache-Control": "no-cache"})


@router.get(
    "/v1/dashboard/data",
    summary="What the dashboard shows, as JSON",
    dependencies=[DashboardKey],
    responses=error_responses(401, 503),
)
async def dashboard_data(request: Request) -> Response:
    """Rates over time (decisions/s, personalize latency percentiles, fallback, hand-off and
    exploration rates, the bandit's variant shares), the intent mix, drift (PSI), stream and
    archive lag per partition, the A/B report with 95 % intervals and the loaded models. Read
    from the server's metrics, with `serve --workers N` the sum of its processes (503, as
    `/metrics`, when one of them does not answer). `poll_s`: how often to poll (the setting
    `dashboard_step_s`; the figures change no faster)."""
    # the A/B report reads the shared counters, the lag may ask the worker over HTTP
    return OrjsonResponse(await off_loop(request, _dashboard_body, request.app.state))


def _dashboard_body(state: Any) -> dict[str, Any]:
    data: DashboardData = state.dashboard
    state.metrics.refresh()  # drift and other monitors
    body = data.snapshot()
    worker_url = state.settings.worker_metrics_url
    if worker_url is not None:  # the stream worker runs in a process of its own
        body["lag"] = _worker_lag(worker_url, body["lag"])
    decider = state.decider
    drift = server_drift(state)  # of the figures shown: with siblings, their summed counts
    body["drift_window"] = drift.window_count if drift is not None else 0
    body["drift_reference"] = drift is not None and drift.reference is not None
    body["experiment"] = None
    body["models"] = None
    if decider is not None:
        body["experiment"] = decider.experiment_report().model_dump(mode="json")
        body["models"] = _models(decider.models.versions, decider.models.metadata)
    return body


def _worker_lag(url: str, local: dict[str, Any]) -> dict[str, Any]:
    try:
        text = worker_exposition(url, WORKER_TIMEOUT_S)
    except httpx.HTTPError as exc:
        logger.warning("the worker's metrics at %s are unreachable: %r", url, exc)
        return local
    return lag_from_exposition(text)


def _models(versions: Any, metadata: Any) -> dict[str, Any]:
    metrics = metadata.get("metrics", {})
    training = metadata.get("training", {})
    data = metadata.get("data") or {}  # the pipeline's card; older versions: training only
    return {
        "versions": dict(versions),
        "intent_training": {
            "version": versions.get("intent"),
            "source": data.get("source", training.get("source")),
            "rows": data.get("rows", training.get("n_rows")),
            "seconds": training.get("seconds"),
            "split": metrics.get("split", "validation"),
            "figures": {k: metrics.get(k) for k in MODEL_FIGURES if k in metrics},
        },
    }
