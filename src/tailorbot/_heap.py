"""Keep the start-up heap out of the garbage collector's full collections.

A server process holds hundreds of thousands of long-lived objects once its modules and
models are loaded (FastAPI, pydantic, the models, the knowledge base). None of them ever
becomes garbage, yet every full (generation 2) collection traverses all of them: in an API
process serving 700 decisions/s, full collections took 124-127 ms, a stall every request in
flight waits out; with the start-up heap frozen they took 6-15 ms (docs/benchmarks.md).
``gc.freeze`` moves what exists now into a permanent generation that collections skip;
objects made later are collected as usual, and frozen ones are still freed by reference
counting. (The stream worker process freezes after every batch: stream/collector.py.)

>>> freeze_long_lived() >= 0
True
"""

from __future__ import annotations

import gc


def freeze_long_lived() -> int:
    """Collect everything once, then freeze what survived; returns how many are frozen.

    Call it when a process has loaded what it keeps (modules, models, the KB) and again after
    it replaced them (a hot-swapped model): the earlier freeze is undone first, so what the
    replaced objects left as cyclic garbage is collected rather than kept for good. Each
    call is one full collection: a pause, at start-up and at a swap only.
    """
    gc.unfreeze()
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()
