"""Server processes reading each other's metrics through a folder (telemetry/siblings.py)."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

from tailorbot.metrics import Metrics
from tailorbot.telemetry.siblings import SiblingExposition, sibling_expositions

ANSWERED = 'tailorbot_decisions_total{outcome="answered"}'


def _metrics(answered: int) -> Metrics:
    metrics = Metrics()
    metrics.decisions.labels(outcome="answered").inc(answered)
    return metrics


def test_each_process_reads_every_other_one_and_not_itself(tmp_path: Path) -> None:
    servers = [SiblingExposition(tmp_path, _metrics(n).render, pid=n) for n in (11, 12, 13)]
    try:
        found = sibling_expositions(tmp_path, own_pid=12, timeout_s=5.0)
    finally:
        for server in servers:
            server.close()
    assert (found.answered, found.unreachable, found.ended) == (2, 0, 0)
    texts = sorted(e.text for e in found.texts)
    assert f"{ANSWERED} 11.0" in texts[0] and f"{ANSWERED} 13.0" in texts[1]
    assert not any(e.ended for e in found.texts)


def test_the_exposition_is_read_at_each_scrape(tmp_path: Path) -> None:
    metrics = _metrics(1)
    server = SiblingExposition(tmp_path, metrics.render, pid=21)
    try:
        first = sibling_expositions(tmp_path, own_pid=0, timeout_s=5.0).texts[0].text
        metrics.decisions.labels(outcome="answered").inc(4)
        second = sibling_expositions(tmp_path, own_pid=0, timeout_s=5.0).texts[0].text
    finally:
        server.close()
    assert f"{ANSWERED} 1.0" in first and f"{ANSWERED} 5.0" in second


def test_a_stopped_process_leaves_its_last_exposition(tmp_path: Path) -> None:
    metrics = _metrics(7)
    SiblingExposition(tmp_path, metrics.render, pid=31).close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["31.ended.prom"]
    found = sibling_expositions(tmp_path, own_pid=0, timeout_s=5.0)
    assert (found.answered, found.ended) == (0, 1)
    assert found.texts[0].ended and f"{ANSWERED} 7.0" in found.texts[0].text


def test_a_killed_process_socket_is_removed_and_a_live_silent_one_counted(
    tmp_path: Path,
) -> None:
    # A process that died without stopping: its pid is free, its socket file stays.
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    (tmp_path / f"{int(dead.stdout)}.sock").touch()
    # A process alive but not answering on its socket (a file no one listens on).
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (tmp_path / f"{alive.pid}.sock").touch()
        found = sibling_expositions(tmp_path, own_pid=0, timeout_s=2.0)
    finally:
        alive.kill()
        alive.wait()
    assert (found.answered, found.unreachable, found.ended) == (0, 1, 0)
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"{alive.pid}.sock"]


def test_a_reused_pid_takes_over_its_socket(tmp_path: Path) -> None:
    (tmp_path / "41.sock").touch()  # left by a killed process whose pid came round again
    server = SiblingExposition(tmp_path, _metrics(2).render, pid=41)
    try:
        assert stat.S_ISSOCK((tmp_path / "41.sock").stat().st_mode)
        found = sibling_expositions(tmp_path, own_pid=os.getpid(), timeout_s=5.0)
    finally:
        server.close()
    assert found.answered == 1
