"""The sum of several server processes' expositions (telemetry/process_sum.py)."""

from __future__ import annotations

import math

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from tailorbot.metrics import Metrics, merged_exposition, registry_of
from tailorbot.telemetry.process_sum import Exposition, summed_families


def _values(expositions: list[str | Exposition]) -> dict[tuple[str, tuple], float]:
    """Every merged sample, keyed by name and labels, after a round trip through the text
    format (what /metrics answers)."""
    text = generate_latest(registry_of(summed_families(expositions))).decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def _two() -> tuple[Metrics, Metrics]:
    return Metrics(), Metrics()


def test_counters_and_histograms_add_up_label_by_label() -> None:
    a, b = _two()
    a.decisions.labels(outcome="answered").inc(2)
    b.decisions.labels(outcome="answered").inc(3)
    b.decisions.labels(outcome="fallback").inc()  # only one process has this series
    for seconds in (0.002, 0.2):
        a.request_latency.labels(route="/v1/personalize").observe(seconds)
    b.request_latency.labels(route="/v1/personalize").observe(0.002)
    got = _values([a.render().decode(), b.render().decode()])
    assert got[("tailorbot_decisions_total", (("outcome", "answered"),))] == 5
    assert got[("tailorbot_decisions_total", (("outcome", "fallback"),))] == 1
    route = ("route", "/v1/personalize")
    bucket = "tailorbot_request_latency_seconds_bucket"
    assert got[(bucket, (("le", "0.0025"), route))] == 2
    assert got[(bucket, (("le", "+Inf"), route))] == 3
    assert got[("tailorbot_request_latency_seconds_count", (route,))] == 3
    assert math.isclose(got[("tailorbot_request_latency_seconds_sum", (route,))], 0.204)


def test_created_times_take_the_earliest() -> None:
    a, b = _two()
    a.decisions.labels(outcome="answered").inc()
    b.decisions.labels(outcome="answered").inc()
    key = ("tailorbot_decisions_created", (("outcome", "answered"),))
    own = [_values([m.render().decode()])[key] for m in (a, b)]
    assert _values([a.render().decode(), b.render().decode()])[key] == min(own)


def test_gauges_sum_except_info_times_and_drift() -> None:
    a, b = _two()
    a.requests_in_flight.set(2)
    b.requests_in_flight.set(5)
    a.model_info.labels(kind="intent", version="v1").set(1)  # mid-swap: both versions served
    b.model_info.labels(kind="intent", version="v1").set(1)
    b.model_info.labels(kind="intent", version="v2").set(1)
    a.retrain_last_time.set(1_000.0)
    b.retrain_last_time.set(2_000.0)
    a.drift_psi.labels(feature="intent").set(0.05)
    b.drift_psi.labels(feature="intent").set(0.3)
    a.drift_psi.labels(feature="confidence").set(float("nan"))  # too few decisions yet
    b.drift_psi.labels(feature="confidence").set(0.1)
    a.drift_psi.labels(feature="message_chars").set(float("nan"))
    b.drift_psi.labels(feature="message_chars").set(float("nan"))
    got = _values([a.render().decode(), b.render().decode()])
    assert got[("tailorbot_requests_in_flight", ())] == 7
    info = "tailorbot_model_info"
    assert got[(info, (("kind", "intent"), ("version", "v1")))] == 1
    assert got[(info, (("kind", "intent"), ("version", "v2")))] == 1
    assert got[("tailorbot_retrain_last_timestamp_seconds", ())] == 2_000.0
    psi = "tailorbot_drift_psi"
    assert got[(psi, (("feature", "intent"),))] == 0.3
    assert got[(psi, (("feature", "confidence"),))] == 0.1
    assert math.isnan(got[(psi, (("feature", "message_chars"),))])


def test_an_ended_process_keeps_its_counts_not_its_gauges() -> None:
    live, ended = _two()
    live.decisions.labels(outcome="answered").inc(4)
    ended.decisions.labels(outcome="answered").inc(6)
    ended.request_latency.labels(route="/v1/events").observe(0.01)
    live.requests_in_flight.set(1)
    ended.requests_in_flight.set(3)  # what it held when it stopped: not in flight any more
    got = _values([live.render().decode(), Exposition(ended.render().decode(), ended=True)])
    assert got[("tailorbot_decisions_total", (("outcome", "answered"),))] == 10
    assert got[("tailorbot_request_latency_seconds_count", (("route", "/v1/events"),))] == 1
    assert got[("tailorbot_requests_in_flight", ())] == 1


def test_one_process_is_itself() -> None:
    only = Metrics()
    only.decisions.labels(outcome="answered").inc(3)
    only.message_chars.observe(40)
    text = only.render().decode()
    assert _values([text]) == _values([text, ""])
    assert _values([text])[("tailorbot_decisions_total", (("outcome", "answered"),))] == 3


def test_summed_processes_beside_the_worker_name_each_family_once() -> None:
    """The worker's families (and their _created families) replace the API's: none twice."""
    a, b, worker = Metrics(), Metrics(), Metrics()
    for m in (a, b, worker):
        m.events_applied.inc()
        m.apply_latency.observe(0.01)
        m.decisions.labels(outcome="answered").inc()
    summed = registry_of(summed_families([a.render().decode(), b.render().decode()]))
    text = merged_exposition(summed, worker.render().decode()).decode()
    types = [line.split()[2] for line in text.splitlines() if line.startswith("# TYPE ")]
    assert len(types) == len(set(types)), sorted(t for t in types if types.count(t) > 1)
    assert "tailorbot_events_applied_created" in types
    assert "tailorbot_events_applied_total 1.0" in text  # the worker's, not 3
    assert 'tailorbot_decisions_total{outcome="answered"} 2.0' in text  # the processes' sum
