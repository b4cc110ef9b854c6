"""This server's metrics as one registry: this process's, or, with ``serve --workers N``, the
sum of its N processes (:mod:`tailorbot.telemetry.process_sum`). ``GET /metrics`` renders it
and the dashboard reads its rates from it, so both show the whole server whichever process
a request reaches."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, generate_latest

from tailorbot.errors import Unavailable
from tailorbot.metrics import registry_of
from tailorbot.telemetry.process_sum import summed_families

SIBLING_TIMEOUT_S = 2.0  # the longest wait for another process's exposition


def server_registry(state: Any) -> CollectorRegistry:
    """The registry of the app whose ``state`` this is; with sibling processes, one holding
    the sum of them all. :class:`Unavailable` (503) when a live process cannot be read: a
    partial sum would read as a counter reset."""
    metrics = state.metrics
    if state.settings.metrics_siblings_dir is None:
        return metrics.registry
    siblings = getattr(state, "siblings", None)
    if siblings is None:
        raise Unavailable("this server process could not join its siblings' metrics (see its log)")
    try:
        found = siblings.read(SIBLING_TIMEOUT_S)
    except OSError as exc:
        raise Unavailable(f"cannot read the server processes' metrics: {exc}") from exc
    if found.silent:
        raise Unavailable(
            f"server processes {', '.join(found.silent)} did not answer for their metrics "
            f"within {SIBLING_TIMEOUT_S:g} s"
        )
    own = generate_latest(metrics.registry).decode()
    return registry_of([*summed_families([own, *found.expositions]), found.family()])
