"""``GET /metrics``: Prometheus text exposition of this process's metrics."""

from __future__ import annotations

from fastapi import APIRouter
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.responses import Response

from tailorbot.api.deps import MetricsDep
from tailorbot.api.errors import error_responses

router = APIRouter(tags=["health"])


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}}, **error_responses(401, 403)},
)
def get_metrics(metrics: MetricsDep) -> Response:
    """Counters (events ingested/rejected/applied/skipped, decisions), the processor lag and
    latency histograms (apply, event-to-feature, per-route request)."""
    return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST)
