"""Garbage collection stays on in a server process: only a stream worker that is a process
of its own (``tailorbot worker``) pauses it during its batches and freezes their survivors."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tailorbot.config import Settings
from tailorbot.log.base import Consumer, LogRecord
from tailorbot.runtime import Runtime
from tailorbot.stream.collector import BatchCollector
from tailorbot.stream.worker import StreamWorker
from tests.stream.test_worker import append, synthetic


class ObservedWorker(StreamWorker):
    """A stream worker that notes whether the collector was on inside each batch."""

    seen: list[bool]
    cycles: list[weakref.ref[Any]]

    def _run_batch(self, consumer: Consumer, records: list[LogRecord]) -> None:
        self.seen.append(gc.isenabled())
        cycle: dict[str, Any] = {}
        cycle["self"] = cycle  # garbage of the batch that only the collector can free
        self.cycles.append(weakref.ref(_Box(cycle)))
        super()._run_batch(consumer, records)


class _Box:
    """A weakly referenceable holder (a dict cannot be weakly referenced)."""

    def __init__(self, cycle: dict[str, Any]) -> None:
        self.cycle = cycle
        cycle["box"] = self


@pytest.fixture(autouse=True)
def _unfrozen() -> Iterator[None]:
    yield
    gc.unfreeze()  # what a worker-process batch froze in this test process


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[Runtime]:
    runtime = Runtime(Settings(data_dir=tmp_path, partitions=2, run_worker_in_server=False))
    append(runtime.log, synthetic(50, 5, seed=3))
    yield runtime
    runtime.stop()


def _observe(runtime: Runtime, **options: bool) -> ObservedWorker:
    worker = ObservedWorker(runtime.log, runtime.stores, runtime.settings, **options)
    worker.seen = []
    worker.cycles = []
    while worker.run_once():
        pass
    worker.close()
    return worker


def test_by_default_a_batch_leaves_the_collector_on(runtime: Runtime) -> None:
    assert gc.isenabled()
    worker = _observe(runtime)
    assert worker.seen and all(worker.seen)
    assert runtime.stream_worker().pause_gc is False  # the worker thread of `serve`


def test_a_worker_process_may_pause_it_per_batch(runtime: Runtime) -> None:
    worker = _observe(runtime, pause_gc=True)
    assert worker.seen and not any(worker.seen)
    assert gc.isenabled(), "restored after each batch"
    assert runtime.stream_worker(pause_gc=True).pause_gc is True  # `tailorbot worker`


def test_a_worker_process_freezes_what_its_batches_leave_and_collects_their_cycles(
    runtime: Runtime,
) -> None:
    gc.unfreeze()
    worker = _observe(runtime, pause_gc=True)
    assert gc.get_freeze_count() > 0, "the survivors leave the collector's reach"
    assert worker.cycles and all(ref() is None for ref in worker.cycles), (
        "each batch's cyclic garbage was collected before the freeze, not frozen with it"
    )


def test_the_worker_thread_of_a_server_freezes_nothing(runtime: Runtime) -> None:
    gc.unfreeze()
    _observe(runtime)
    assert gc.get_freeze_count() == 0


def test_frozen_objects_are_reclaimed_by_the_periodic_full_collection() -> None:
    gc.unfreeze()
    collector = BatchCollector(reclaim_every_s=3600.0)
    box = _Box({})
    with collector.batch():
        pass  # box (alive, in a cycle with its dict) is frozen after the batch
    ref = weakref.ref(box)
    del box  # now cyclic garbage among the frozen objects: no collection reaches it ...
    gc.collect()
    assert ref() is not None
    collector._reclaim_at = 0.0  # ... until the periodic full collection is due
    with collector.batch():
        pass
    assert ref() is None
    with pytest.raises(ValueError, match="reclaim_every_s"):
        BatchCollector(reclaim_every_s=0)
