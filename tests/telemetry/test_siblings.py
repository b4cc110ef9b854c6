"""Server processes reading each other's metrics through a folder (telemetry/siblings.py)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from tailorbot.metrics import Metrics
from tailorbot.telemetry.process_sum import summed_families
from tailorbot.telemetry.siblings import ENDED, SiblingExposition, Siblings, folder_fits

ANSWERED = 'tailorbot_decisions_total{outcome="answered"}'


def _metrics(answered: int) -> Metrics:
    metrics = Metrics()
    metrics.decisions.labels(outcome="answered").inc(answered)
    return metrics


def _answered(found: Siblings, own: Metrics | None = None) -> float:
    """The summed count of answered decisions: what /metrics would say."""
    texts = [*found.expositions] + ([own.render().decode()] if own is not None else [])
    return sum(
        s.value
        for family in summed_families(texts)
        for s in family.samples
        if s.name == "tailorbot_decisions_total" and s.labels == {"outcome": "answered"}
    )


def test_each_process_reads_every_other_one_and_not_itself(tmp_path: Path) -> None:
    servers = [SiblingExposition(tmp_path, _metrics(n).render) for n in (11, 12, 13)]
    try:
        found = servers[1].read(timeout_s=5.0)
    finally:
        for server in servers:
            server.close()
    assert (found.answered, found.silent, found.ended) == (2, [], 0)
    texts = sorted(e.text for e in found.expositions)
    assert f"{ANSWERED} 11.0" in texts[0] and f"{ANSWERED} 13.0" in texts[1]
    assert not any(e.ended for e in found.expositions)


def test_the_exposition_is_rendered_at_each_read(tmp_path: Path) -> None:
    metrics = _metrics(1)
    reader = SiblingExposition(tmp_path, Metrics().render)
    server = SiblingExposition(tmp_path, metrics.render)
    try:
        first = _answered(reader.read(timeout_s=5.0))
        metrics.decisions.labels(outcome="answered").inc(4)
        second = _answered(reader.read(timeout_s=5.0))
    finally:
        server.close()
        reader.close()
    assert (first, second) == (1, 5)


def test_stopped_processes_fold_into_one_ended_record_that_keeps_counting(
    tmp_path: Path,
) -> None:
    reader = SiblingExposition(tmp_path, Metrics().render)
    for answered in (7, 5):  # the second with the first one's pid: names never repeat
        stopping = _metrics(answered)
        stopping.requests_in_flight.set(2)  # a gauge of a stopped process means nothing
        SiblingExposition(tmp_path, stopping.render).close()
    found = reader.read(timeout_s=5.0)
    reader.close()
    assert (found.answered, found.ended) == (0, 2)
    assert [e.ended for e in found.expositions] == [True]
    assert _answered(found) == 12
    names = {f.name for f in text_string_to_metric_families(found.expositions[0].text)}
    assert "tailorbot_requests_in_flight" not in names
    assert "tailorbot_decisions_created" in names  # the counts' start times stay
    assert not list(tmp_path.glob("*.sock"))  # the reader's closed too: every socket gone
    assert (tmp_path / ENDED).exists()


def test_a_killed_process_socket_is_removed_and_a_silent_one_named(tmp_path: Path) -> None:
    # A process that died without stopping: its pid is free, its socket stays behind.
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    (tmp_path / f"{int(dead.stdout)}-1.sock").touch()
    # A live process (this one) whose socket accepts but never answers.
    silent = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    silent.bind(str(tmp_path / f"{os.getpid()}-2.sock"))
    silent.listen(4)
    reader = SiblingExposition(tmp_path, Metrics().render)
    try:
        found = reader.read(timeout_s=0.5)
    finally:
        reader.close()
        silent.close()
    assert (found.answered, found.silent, found.ended) == (0, [f"{os.getpid()}-2"], 0)
    assert sorted(p.name for p in tmp_path.glob("*.sock")) == [f"{os.getpid()}-2.sock"]


def test_a_process_stopping_during_reads_counts_once_in_every_read(tmp_path: Path) -> None:
    """The reader fetches the sockets before it reads the ended record: whenever a process
    stops, each read sees it either live or ended, never both and never neither."""
    reader = SiblingExposition(tmp_path, Metrics().render)
    servers = [SiblingExposition(tmp_path, _metrics(10).render) for _ in range(6)]
    totals: list[float] = []
    done = threading.Event()

    def read_until_done() -> None:
        while not done.is_set():
            totals.append(_answered(reader.read(timeout_s=10.0)))

    thread = threading.Thread(target=read_until_done)
    thread.start()
    try:
        for server in servers:
            server.close()
    finally:
        done.set()
        thread.join()
        reader.close()
    assert totals and set(totals) == {60.0}, sorted(set(totals))


def test_socket_paths_must_fit_a_unix_address(tmp_path: Path) -> None:
    assert folder_fits(tmp_path)
    assert not folder_fits(Path("/" + "x" * 100))
