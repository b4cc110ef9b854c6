"""The worker supervisor's restart back-off: doubled while the worker keeps dying, afresh
once it ran a while (the clock and the child processes are stand-ins; no process starts)."""

from __future__ import annotations

from pathlib import Path

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
        if timeout != 0.5:
            pauses.append(timeout)
        return len(pauses) == 6

    monkeypatch.setattr(worker, "_spawn", spawn)
    monkeypatch.setattr(worker._stop, "wait", wait)
    spawn()
    worker._watch()
    # 1, 2, 4 while it keeps dying; after the child that ran 78 s, 1 s again
    assert pauses == [1.0, 2.0, 4.0, 1.0, 2.0, 4.0]
