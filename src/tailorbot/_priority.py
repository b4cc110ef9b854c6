"""Background threads that yield the core to the requests of their process.

A server process pinned to one core (or sharing a few) runs its event loop and background
writers (the decision recorder) on the same core. A writer's batch takes a few milliseconds
of CPU at once (SQLite's work for some 50 decisions), and the kernel shares the core
evenly between runnable threads: requests that arrived meanwhile waited for the batch. At
1,000 decisions/s the slow requests came in clusters every recorder linger (a 56 ms period
in their arrival times; 115 ms with a 100 ms linger). With the writer's thread niced, the
kernel runs it in the event loop's idle time instead and the period was gone
(docs/benchmarks.md). The writer still gets about a tenth of the core when the loop is
saturated (CFS weights: 110 against 1,024), more than it needs.

Linux only (a thread's nice value is per thread there; elsewhere ``setpriority`` with a
thread id would renice a process): elsewhere, and where the call is refused (a sandbox), the
thread keeps its priority. Threads and processes a niced thread starts inherit its nice
value, and an unprivileged process cannot raise it back: a niced thread must not be the one
that starts long-lived threads (the runtime starts the archive writer's thread itself, and
keeps the decision recorder at its priority when the log is Kafka, whose producer the thread
that hit a fatal error rebuilds, librdkafka's threads included).

>>> lower_this_thread(0)  # nothing to add: the thread keeps its priority
False
"""

from __future__ import annotations

import logging
import os
import sys
import threading

logger = logging.getLogger(__name__)

BACKGROUND_NICENESS = 10


def lower_this_thread(niceness: int = BACKGROUND_NICENESS) -> bool:
    """Add ``niceness`` to the calling thread's nice value (lower CPU priority); whether it
    went up. Call it from the thread itself, first thing."""
    if not sys.platform.startswith("linux") or niceness <= 0:
        return False
    tid = threading.get_native_id()
    try:
        before = os.getpriority(os.PRIO_PROCESS, tid)
        os.setpriority(os.PRIO_PROCESS, tid, before + niceness)  # the kernel caps it at 19
        return os.getpriority(os.PRIO_PROCESS, tid) > before
    except OSError as exc:  # refused by a sandbox: keep running at the same priority
        logger.debug("could not lower the priority of thread %d: %r", tid, exc)
        return False
