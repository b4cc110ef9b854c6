"""This server's metrics as one registry: this process's, or, with ``serve --workers N``, the
sum of its N processes (:mod:`tailorbot.telemetry.process_sum`), with the input drift
computed over the summed counts. ``GET /metrics`` renders it and the dashboard reads its
rates from it, so both show the whole server whichever process a request reaches."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric

from tailorbot.errors import Unavailable
from tailorbot.metrics import Metrics, registry_of
from tailorbot.models.drift import DriftMonitor
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
    summed = summed_families([own, *found.expositions])
    drift = server_drift(state)
    if drift is not None:  # once a model is loaded
        summed = _with_server_drift(summed, drift.update(drift.counts_in(summed)), metrics)
    return registry_of([*summed, found.family()])


def server_drift(state: Any) -> DriftMonitor | None:
    """The drift monitor of the figures :func:`server_registry` gives: with sibling
    processes, the one fed their summed counts; else this process's (None before a model
    is loaded)."""
    runtime = getattr(state, "runtime", None)
    if runtime is None:
        return None
    summed = state.settings.metrics_siblings_dir is not None
    return runtime.server_drift if summed else runtime.drift


def _with_server_drift(
    families: list[Metric], psi: Mapping[str, float], metrics: Metrics
) -> list[Metric]:
    """``families`` with the drift gauge replaced by ``psi``: the PSI of the processes'
    summed counts, which each process's own (the highest of them, in the sum) would
    overstate, each measured on 1/N of the decisions."""
    (described,) = metrics.drift_psi.describe()
    server = GaugeMetricFamily(described.name, described.documentation, labels=["feature"])
    for feature, value in psi.items():
        server.add_metric([feature], value)
    return [f for f in families if f.name != described.name] + [server]
