"""The worker supervisor's restart back-off: doubled while the worker keeps dying, afresh
once it ran a while (the clock and the child processes are stand-ins; no process starts)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import httpx
import pytest

from tailorbot.cli import supervise
from tailorbot.cli.supervise import WorkerProcess
from tailorbot.config import Settings


class _Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def monotonic(self) -> float:
        return self.now


class _Child:
    """A worker process that dies ``lives`` seconds after it started."""

    returncode = -9

    def __init__(self, clock: _Clock, lives: float) -> None:
        self.clock = clock
        self.dies_at = clock.now + lives

    def poll(self) -> int | None:
        return self.returncode if self.clock.now >= self.dies_at else None


def test_the_back_off_doubles_and_starts_afresh_after_a_healthy_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> None:
    clock = _Clock()
    monkeypatch.setattr(supervise.time, "monotonic", clock.monotonic)
    worker = WorkerProcess(Settings(data_dir=tmp_path))
    request.addfinalizer(worker._metrics.close)
    lives = iter([2.0, 2.0, 2.0, 78.0, 2.0, 2.0])  # each child's run before it dies
    pauses: list[float] = []

    def spawn() -> None:
        worker._proc = _Child(clock, next(lives))  # type: ignore[assignment]
        worker._spawned_at = clock.now  # what the real spawn records

    def wait(timeout: float) -> bool:  # the stop event's wait: time passes, never stopped
        clock.now += timeout
        return False

    def pause(seconds: float) -> bool:  # the back-off between two workers
        clock.now += seconds
        pauses.append(seconds)
        return len(pauses) == 6

    monkeypatch.setattr(worker, "_spawn", spawn)
    monkeypatch.setattr(worker._stop, "wait", wait)
    monkeypatch.setattr(worker, "_refuse_for", pause)
    spawn()
    worker._watch()
    # 1, 2, 4 while it keeps dying; after the child that ran 78 s, 1 s again
    assert pauses == [1.0, 2.0, 4.0, 1.0, 2.0, 4.0]


def test_between_two_workers_connections_are_closed_at_once(tmp_path: Path) -> None:
    """No worker runs: a reader of its metrics fails at once, as on a closed port, instead of
    waiting in the held socket's queue until its timeout."""
    worker = WorkerProcess(Settings(data_dir=tmp_path))
    refusing = threading.Thread(target=worker._refuse_for, args=(30.0,))
    refusing.start()
    try:
        started = time.monotonic()
        with pytest.raises(httpx.HTTPError):
            httpx.get(worker.metrics_url + "/metrics", timeout=10)
        assert time.monotonic() - started < 5  # not the 10 s timeout
    finally:
        worker._stop.set()  # what stop() does first
        refusing.join(timeout=5)
        worker._metrics.close()
    assert not refusing.is_alive()
