"""``GET /metrics``: Prometheus text exposition of this server (its processes, and its
worker process)."""

from __future__ import annotations

import logging

import httpx
from fastapi import APIRouter, Request
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.responses import Response

from tailorbot.api.deps import MetricsDep, SettingsDep
from tailorbot.api.errors import error_responses
from tailorbot.api.server_metrics import server_registry
from tailorbot.metrics import merged_exposition
from tailorbot.telemetry.worker_metrics import worker_exposition

logger = logging.getLogger(__name__)
WORKER_TIMEOUT_S = 2.0

router = APIRouter(tags=["health"])


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}}, **error_responses(401, 403, 503)},
)
def get_metrics(request: Request, metrics: MetricsDep, settings: SettingsDep) -> Response:
    """Counters (events ingested/rejected/applied/skipped, decisions), the processor lag and
    latency histograms (apply, event-to-feature, per-route request). With the stream worker
    in its own process (the default of `tailorbot serve`), its metrics are included; with
    `serve --workers N`, the figures are the sum of the N server processes (503 when one of
    them does not answer: a partial sum would read as a counter reset)."""
    metrics.refresh()  # the monitors' gauges (drift)
    registry = server_registry(request.app.state)
    url = settings.worker_metrics_url
    if url is None:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
    try:
        remote = worker_exposition(url, WORKER_TIMEOUT_S)
    except httpx.HTTPError as exc:
        logger.warning("the worker's metrics at %s are unreachable: %r", url, exc)
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
    return Response(merged_exposition(registry, remote), media_type=CONTENT_TYPE_LATEST)
