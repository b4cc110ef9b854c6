"""``GET /metrics``: Prometheus text exposition of this process (and its worker process)."""

from __future__ import annotations

import logging

import httpx
from fastapi import APIRouter
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.responses import Response

from tailorbot.api.deps import MetricsDep, SettingsDep
from tailorbot.api.errors import error_responses
from tailorbot.metrics import merged_exposition

logger = logging.getLogger(__name__)
WORKER_TIMEOUT_S = 2.0

router = APIRouter(tags=["health"])


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}}, **error_responses(401, 403)},
)
def get_metrics(metrics: MetricsDep, settings: SettingsDep) -> Response:
    """Counters (events ingested/rejected/applied/skipped, decisions), the processor lag and
    latency histograms (apply, event-to-feature, per-route request). With the stream worker
    in its own process (the default of `tailorbot serve`), its metrics are included."""
    url = settings.worker_metrics_url
    if url is None:
        return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST)
    try:
        remote = httpx.get(url + "/metrics", timeout=WORKER_TIMEOUT_S).text
    except httpx.HTTPError as exc:
        logger.warning("the worker's metrics at %s are unreachable: %r", url, exc)
        return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST)
    metrics.refresh()  # the monitors' gauges (drift), as render() does
    return Response(merged_exposition(metrics.registry, remote), media_type=CONTENT_TYPE_LATEST)
