r"""One Prometheus exposition for several server processes: their figures summed.

``tailorbot serve --workers N`` runs N processes behind one port, and a scrape reaches one of
them. Each keeps its own counters, so that process's figures alone would make Prometheus see
one series jumping between processes (rates and quantiles wrong). The process a scrape
reaches asks the others for their expositions (:mod:`.siblings`) and answers with the sum.

How a sample of several processes becomes one:

* counters, histograms and summaries: the sum (a histogram's buckets, ``_count`` and
  ``_sum`` alike), and for their ``_created`` series (a gauge family of its own in the text
  format) the earliest;
* gauges: the sum (requests in flight, thread CPU), except the ``*_info`` gauges (1 for what
  a process serves: during a model swap both versions show 1), the times of
  :data:`LATEST_GAUGES` and the figures of :data:`HIGHEST_GAUGES`, which take the highest;
* a process that has ended (:class:`.siblings.SiblingExposition` folds its last exposition
  into the ended ones'): its counters, histograms and summaries still count (and their
  ``_created`` times), its gauges no longer do.

>>> def exposition(decisions, in_flight):
...     return (
...         "# TYPE tailorbot_decisions counter\n"
...         f'tailorbot_decisions_total{{outcome="answered"}} {decisions}\n'
...         "# TYPE tailorbot_requests_in_flight gauge\n"
...         f"tailorbot_requests_in_flight {in_flight}\n"
...     )
>>> families = summed_families([exposition(3.0, 2.0), exposition(4.0, 1.0)])
>>> [(s.name, s.value) for f in families for s in f.samples]
[('tailorbot_decisions_total', 7.0), ('tailorbot_requests_in_flight', 3.0)]
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from tailorbot.metrics import is_created_family

# Gauges of one value for the whole server, whichever process holds the newest (a time).
LATEST_GAUGES = frozenset({"tailorbot_retrain_last_timestamp_seconds"})
# Gauges whose worst process is the one to alert on: each process measures its own share of
# the traffic (drift of the inputs it saw), and the sum of such figures means nothing. (Once
# a model is loaded, the API replaces the drift by the PSI of the summed counts:
# api/server_metrics.py.)
HIGHEST_GAUGES = frozenset({"tailorbot_drift_psi"})
_SUMMED_TYPES = frozenset({"counter", "histogram", "summary", "gaugehistogram"})
# (the value so far, the next process's value) -> the merged value
_Combine = Callable[[float, float], float]


@dataclass(frozen=True)
class Exposition:
    """One process's text exposition; ``ended``: the last one of a process that has ended
    (its gauges are left out)."""

    text: str
    ended: bool = False


def summed_families(expositions: Iterable[str | Exposition]) -> list[Metric]:
    """The families of ``expositions`` merged sample by sample (see the module's rules), in
    the order they first appear."""
    families: dict[str, Metric] = {}
    values: dict[str, dict[tuple[str, tuple[tuple[str, str], ...]], float]] = {}
    for item in expositions:
        exposition = item if isinstance(item, Exposition) else Exposition(item)
        for family in text_string_to_metric_families(exposition.text):
            if exposition.ended and not _kept_when_ended(family):
                continue
            if family.name not in families:
                families[family.name] = Metric(
                    family.name, family.documentation, family.type, family.unit
                )
                values[family.name] = {}
            into = values[family.name]
            combine = _combiner(family)
            for sample in family.samples:
                key = (sample.name, tuple(sorted(sample.labels.items())))
                known = into.get(key)
                into[key] = sample.value if known is None else combine(known, sample.value)
    for name, family in families.items():
        family.samples = [
            Sample(sample_name, dict(labels), value)
            for (sample_name, labels), value in values[name].items()
        ]
    return list(families.values())


def _kept_when_ended(family: Metric) -> bool:
    """Whether an ended process's family still counts: its counts and their start times."""
    return family.type in _SUMMED_TYPES or is_created_family(family.name)


def _combiner(family: Metric) -> _Combine:
    if family.type in _SUMMED_TYPES:
        return operator.add
    if is_created_family(family.name):
        return min
    if (
        family.name.endswith("_info")
        or family.name in LATEST_GAUGES
        or family.name in HIGHEST_GAUGES
    ):
        return _highest
    return operator.add


def _highest(known: float, value: float) -> float:
    """The higher value; a NaN (a figure a process cannot compute yet) only when both are."""
    if math.isnan(known):
        return value
    if math.isnan(value):
        return known
    return max(known, value)


__all__ = ["HIGHEST_GAUGES", "LATEST_GAUGES", "Exposition", "summed_families"]
