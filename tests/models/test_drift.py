"""The drift monitor's counts, from a process's registry or from families read back from
the text format (what the sum of `serve --workers N`'s processes is made of)."""

from __future__ import annotations

import math
from collections import Counter

from prometheus_client.parser import text_string_to_metric_families

from tailorbot.metrics import Metrics
from tailorbot.models.drift import FEATURES, DriftMonitor, psi

REFERENCE = {
    "intent": {"card_arrival": 60, "change_pin": 40},
    "confidence": {"0.5": 20, "0.9": 50, "+Inf": 30},
    "message_chars": {"20": 40, "80": 60},
}


def _served(metrics: Metrics, n: int) -> None:
    for i in range(n):
        intent = "card_arrival" if i % 3 else "change_pin"
        metrics.observe_decision(
            intent, 0.3 + (i % 7) / 10, 10 + i, None, "personalized", "concise", explored=False
        )


def test_the_counts_read_back_from_the_text_format_are_the_registry_s() -> None:
    metrics = Metrics()
    _served(metrics, 75)
    monitor = DriftMonitor(REFERENCE, metrics)
    parsed = list(text_string_to_metric_families(metrics.render().decode()))
    assert monitor.counts_in(parsed) == monitor.counts()
    counts = monitor.counts()
    assert counts["intent"] == {"card_arrival": 50.0, "change_pin": 25.0}
    assert sum(counts["confidence"].values()) == sum(counts["message_chars"].values()) == 75


def test_the_window_starts_at_the_first_counts_and_needs_enough_decisions() -> None:
    metrics = Metrics()
    monitor = DriftMonitor(REFERENCE, metrics, step_s=0.0, min_count=50)
    _served(metrics, 40)
    assert all(math.isnan(v) for v in monitor.refresh().values())  # 40 < 50
    _served(metrics, 20)
    result = monitor.refresh()  # the window: from the first snapshot (40) to now (60)
    assert monitor.window_count == 20 and math.isnan(result["intent"])
    fresh = DriftMonitor(REFERENCE, metrics, step_s=0.0, min_count=50)
    counts = fresh.counts()
    result = fresh.update(counts)  # one snapshot: the counts since the start
    assert fresh.window_count == 60
    assert result["intent"] == psi(counts["intent"], REFERENCE["intent"])
    exported = metrics.registry.get_sample_value("tailorbot_drift_psi", {"feature": "intent"})
    assert math.isnan(exported)  # update() exports nothing; refresh() set the NaN above


def test_refresh_exports_the_psi_of_this_process() -> None:
    metrics = Metrics()
    monitor = DriftMonitor(REFERENCE, metrics, step_s=0.0)
    _served(metrics, 60)
    result = monitor.refresh()  # the first refresh: the counts since the start
    assert monitor.window_count == 60
    for feature, value in result.items():
        assert math.isfinite(value)
        gauge = metrics.registry.get_sample_value("tailorbot_drift_psi", {"feature": feature})
        assert gauge == value


def test_summed_counts_start_at_the_first_read_and_again_when_they_fall() -> None:
    """The sum of several processes holds decisions from before the monitor; a process
    killed outright takes its counts out of it."""
    alive, killed = Metrics(), Metrics()
    _served(alive, 100)
    _served(killed, 100)
    monitor = DriftMonitor(REFERENCE, Metrics(), step_s=0.0, from_first_read=True)

    def summed() -> dict[str, dict[str, float]]:  # what the processes' sum holds
        parts = [monitor.counts_in(m.registry.collect()) for m in (alive, killed)]
        return {f: dict(Counter(parts[0][f]) + Counter(parts[1][f])) for f in FEATURES}

    assert all(math.isnan(v) for v in monitor.update(summed()).values())  # a window of 0
    assert monitor.window_count == 0
    _served(alive, 60)
    assert math.isfinite(monitor.update(summed())["intent"]) and monitor.window_count == 60
    killed = Metrics()  # its 100 leave the sum: not 60 - 100 decisions
    _served(alive, 10)
    assert math.isnan(monitor.update(summed())["intent"]) and monitor.window_count == 0
    _served(alive, 55)
    assert monitor.update(summed())["intent"] > 0 and monitor.window_count == 55
