"""Cyclic garbage collection in a stream worker that is a process of its own.

A batch allocates tens of thousands of containers (events, decoded states) that are acyclic
and die by reference counting; the states that survive are the worker's cache
(stream/state_cache.py), which the next batches update. Left to itself, the collector
promotes those survivors to its oldest generation and then walks all of them in every full
collection: at 20,000 users such a collection took 70-240 ms, every few seconds under load,
and each one stalled the feature path for that long (it was most of the event-to-feature
p99). :meth:`BatchCollector.batch` therefore, around each batch:

* pauses the collector during the batch (collecting in the middle only promotes live states);
* after it, collects the young generations (the batch's own cyclic garbage, if any: a few
  milliseconds at most, since only the batch's survivors are walked) and then *freezes*
  what is left (``gc.freeze``): the survivors leave the collector's reach, so the oldest
  generation stays small and full collections stay short. Frozen objects are still freed by
  reference counting as usual;
* every ``reclaim_every_s`` (an hour), unfreezes everything and runs one full collection, so
  that frozen objects that later became cyclic garbage (none are known in the worker's own
  code; other threads of the process, the archiver or the retrainer, may make some) are
  reclaimed: one pause of the old length per hour instead of one every few seconds.

The collector is process-wide, so only a worker process of its own does this
(``StreamWorker(pause_gc=True)``, what ``tailorbot worker`` runs); the worker thread of an API
process leaves it alone.

>>> import gc
>>> collector = BatchCollector()
>>> with collector.batch():
...     gc.isenabled()
False
>>> gc.isenabled(), gc.get_freeze_count() > 0
(True, True)
>>> gc.unfreeze()
"""

from __future__ import annotations

import gc
import time
from collections.abc import Iterator
from contextlib import contextmanager

from tailorbot._heap import freeze_long_lived

RECLAIM_EVERY_S = 3600.0  # a full collection of the frozen objects, this often


class BatchCollector:
    """Pauses the collector during a batch and freezes the batch's survivors after it."""

    def __init__(self, reclaim_every_s: float = RECLAIM_EVERY_S) -> None:
        if reclaim_every_s <= 0:
            raise ValueError(f"reclaim_every_s must be > 0, got {reclaim_every_s}")
        self.reclaim_every_s = reclaim_every_s
        self._reclaim_at = time.monotonic() + reclaim_every_s

    @contextmanager
    def batch(self) -> Iterator[None]:
        """No cyclic collection inside; after: young collection, freeze (and the periodic
        full collection when due). Does nothing if the collector was off already."""
        if not gc.isenabled():
            yield
            return
        gc.disable()
        try:
            yield
        finally:
            gc.collect(1)
            now = time.monotonic()
            if now >= self._reclaim_at:
                self._reclaim_at = now + self.reclaim_every_s
                freeze_long_lived()  # unfreeze, one full collection, freeze again
            else:
                gc.freeze()
            gc.enable()
