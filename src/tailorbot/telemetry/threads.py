"""CPU time of a process's threads, by thread name, for ``/metrics``.

A server process spends its CPU in a few threads with different jobs: the event loop
(``MainThread``: HTTP, routing, answers), the decision threads (``tailorbot-decision``), the
decision recorder (``tailorbot-decision-recorder``), the periodic refreshes, the backend pool
(``AnyIO worker thread``). The process's CPU alone does not say which of them a saturated
server is short of; this collector does, read at each scrape from each live thread's CPU
clock (no cost between scrapes). Threads of one pool share a name: numbered names
(``tailorbot-decision-0``) count under the name without the number.

The figure is a gauge, not a counter: a thread that ends takes its CPU time with it.

>>> import threading
>>> family = next(iter(ThreadCpuCollector().collect()))
>>> family.name
'tailorbot_thread_cpu_seconds'
>>> any(s.labels["thread"] == threading.current_thread().name for s in family.samples)
True
>>> pool_name("tailorbot-decision-1"), pool_name("Thread-3 (serve)"), pool_name("MainThread")
('tailorbot-decision', 'Thread', 'MainThread')
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator

from prometheus_client.metrics_core import GaugeMetricFamily, Metric

_NUMBERED = re.compile(r"-\d+( \(.*\))?$")  # "pool-3", Python's default "Thread-3 (target)"


def pool_name(thread_name: str) -> str:
    """The name a thread's CPU counts under: its own, less a pool's number."""
    return _NUMBERED.sub("", thread_name)


class ThreadCpuCollector:
    """A Prometheus collector: ``tailorbot_thread_cpu_seconds{thread=...}``."""

    def collect(self) -> Iterator[Metric]:
        family = GaugeMetricFamily(
            "tailorbot_thread_cpu_seconds",
            "CPU time of this process's live threads, by thread name (a pool's threads summed)",
            labels=["thread"],
        )
        for name, seconds in sorted(thread_cpu_seconds().items()):
            family.add_metric([name], seconds)
        yield family


def _thread_cpu_clock(tid: int) -> int:
    """The kernel's CPU clock of thread ``tid`` (Linux's ``MAKE_THREAD_CPUCLOCK(tid,
    CPUCLOCK_SCHED)``, what glibc's ``pthread_getcpuclockid`` returns). From the kernel id, not
    the ``pthread_t``: a thread that ends meanwhile then gives EINVAL, not a read of freed
    memory."""
    return ((~tid) << 3) | 6


def thread_cpu_seconds() -> dict[str, float]:
    """CPU seconds of each live thread of this process, summed by :func:`pool_name`."""
    totals: dict[str, float] = {}
    for thread in threading.enumerate():
        tid = thread.native_id
        if tid is None:
            continue
        try:
            seconds = time.clock_gettime(_thread_cpu_clock(tid))
        except OSError:  # the thread ended meanwhile: its id names no clock any more
            continue
        name = pool_name(thread.name)
        totals[name] = totals.get(name, 0.0) + seconds
    return totals
