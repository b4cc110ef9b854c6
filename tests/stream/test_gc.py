"""Garbage collection stays on in a server process: only a stream worker that is a process
of its own (``tailorbot worker``) pauses it during its batches."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path

import pytest

from tailorbot.config import Settings
from tailorbot.runtime import Runtime
from tailorbot.stream.worker import StreamWorker
from tests.stream.test_worker import append, synthetic


class ObservedWorker(StreamWorker):
    """A stream worker that notes whether the collector was on inside each batch."""

    seen: list[bool]

    def _run_batch(self) -> int:
        self.seen.append(gc.isenabled())
        return super()._run_batch()


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[Runtime]:
    runtime = Runtime(Settings(data_dir=tmp_path, partitions=2, run_worker_in_server=False))
    append(runtime.log, synthetic(50, 5, seed=3))
    yield runtime
    runtime.stop()


def _observe(runtime: Runtime, **options: bool) -> ObservedWorker:
    worker = ObservedWorker(runtime.log, runtime.stores, runtime.settings, **options)
    worker.seen = []
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
