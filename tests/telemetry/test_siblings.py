"""Server processes reading each other's metrics through a folder (telemetry/siblings.py)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tailorbot.metrics import Metrics
from tailorbot.telemetry.process_sum import summed_families
from tailorbot.telemetry.siblings import (
    ENDED,
    LONGEST_NAME,
    MAX_SOCKET_PATH,
    SiblingExposition,
    Siblings,
    folder_fits,
)
from tests.helpers import read_siblings

ANSWERED = 'tailorbot_decisions_total{outcome="answered"}'


@pytest.fixture
def folder() -> Iterator[Path]:
    """The sockets' folder: short, since a socket's path must fit a Unix address and pytest's
    own folders grow with the test's name and, under pytest-xdist, the worker's."""
    path = Path(tempfile.mkdtemp(prefix="tb-sib-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)  # one test removes it itself


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


def test_each_process_reads_every_other_one_and_not_itself(folder: Path) -> None:
    servers = [SiblingExposition(folder, _metrics(n).render) for n in (11, 12, 13)]
    try:
        found = servers[1].read(timeout_s=5.0)
    finally:
        for server in servers:
            server.close()
    assert (found.answered, found.silent, found.ended) == (2, [], 0)
    texts = sorted(e.text for e in found.expositions)
    assert f"{ANSWERED} 11.0" in texts[0] and f"{ANSWERED} 13.0" in texts[1]
    assert not any(e.ended for e in found.expositions)


def test_the_exposition_is_rendered_at_each_read(folder: Path) -> None:
    metrics = _metrics(1)
    reader = SiblingExposition(folder, Metrics().render)
    server = SiblingExposition(folder, metrics.render)
    try:
        first = _answered(reader.read(timeout_s=5.0))
        metrics.decisions.labels(outcome="answered").inc(4)
        second = _answered(reader.read(timeout_s=5.0))
    finally:
        server.close()
        reader.close()
    assert (first, second) == (1, 5)


def test_stopped_processes_fold_into_one_ended_record_that_keeps_counting(
    folder: Path,
) -> None:
    for answered in (7, 5):  # the second with the first one's pid: names never repeat
        stopping = _metrics(answered)
        stopping.requests_in_flight.set(2)  # a gauge of a stopped process means nothing
        SiblingExposition(folder, stopping.render).close()
    found = read_siblings(folder)
    assert (found.answered, found.ended) == (0, 2)
    assert [e.ended for e in found.expositions] == [True]
    assert _answered(found) == 12
    names = {f.name for f in text_string_to_metric_families(found.expositions[0].text)}
    assert "tailorbot_requests_in_flight" not in names
    assert "tailorbot_decisions_created" in names  # the counts' start times stay
    assert not list(folder.glob("*.sock"))  # the reader's closed too: every socket gone
    assert (folder / ENDED).exists()


def test_a_refusing_socket_is_removed_and_a_silent_one_named(folder: Path) -> None:
    # Left by a process killed outright: nobody listens, though its pid (this process's
    # here) may name a live process by now.
    dead = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    dead.bind(str(folder / f"{os.getpid()}-1.sock"))
    dead.close()
    # A live process whose socket accepts but never answers.
    silent = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    silent.bind(str(folder / f"{os.getpid()}-2.sock"))
    silent.listen(4)
    try:
        found = read_siblings(folder, timeout_s=0.5)
    finally:
        silent.close()
    assert (found.answered, found.silent, found.ended) == (0, [f"{os.getpid()}-2"], 0)
    assert sorted(p.name for p in folder.glob("*.sock")) == [f"{os.getpid()}-2.sock"]


def test_a_live_process_without_its_socket_makes_the_reads_name_it(folder: Path) -> None:
    SiblingExposition.mark_unjoined(folder)  # this process: alive
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    (folder / f"{int(gone.stdout)}-1.unjoined").touch()  # its process has ended
    found = read_siblings(folder)
    assert [name.partition("-")[0] for name in found.silent] == [str(os.getpid())]
    assert len(list(folder.glob("*.unjoined"))) == 1


def test_a_stray_name_in_the_folder_is_no_process(folder: Path) -> None:
    for name in ("\u00b2-1.unjoined", "99999999999999999999-1.unjoined", "x.unjoined"):
        (folder / name).touch()
    found = read_siblings(folder)
    assert found.silent == [] and not list(folder.glob("*.unjoined"))


def test_a_folder_that_is_gone_cannot_be_read(folder: Path) -> None:
    reader = SiblingExposition(folder, Metrics().render)
    for path in folder.iterdir():
        path.unlink()
    folder.rmdir()
    with pytest.raises(OSError):
        reader.read(timeout_s=5.0)
    reader.close()  # no folder to fold into: logged, the socket still closed


def test_processes_stopping_at_once_fold_every_count(folder: Path) -> None:
    servers = [SiblingExposition(folder, _metrics(3).render) for _ in range(8)]
    start = threading.Barrier(len(servers))

    def stop(server: SiblingExposition) -> None:
        start.wait()
        server.close()

    threads = [threading.Thread(target=stop, args=(server,)) for server in servers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    found = read_siblings(folder)
    assert (found.ended, _answered(found)) == (8, 24.0)


def test_closing_twice_folds_once(folder: Path) -> None:
    server = SiblingExposition(folder, _metrics(4).render)
    server.close()
    server.close()
    found = read_siblings(folder)
    assert (found.ended, _answered(found)) == (1, 4.0)


def test_a_process_stopping_during_reads_counts_once_in_every_read(folder: Path) -> None:
    """The reader fetches the sockets before it reads the ended record: whenever a process
    stops, each read sees it either live or ended, never both and never neither."""
    reader = SiblingExposition(folder, Metrics().render)
    servers = [SiblingExposition(folder, _metrics(10).render) for _ in range(6)]
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


def test_socket_paths_must_fit_a_unix_address(folder: Path) -> None:
    assert folder_fits(folder)
    longest = Path("/" + "x" * (MAX_SOCKET_PATH - LONGEST_NAME - 1))
    assert folder_fits(longest) and not folder_fits(longest.with_name(longest.name + "x"))
    # the longest name this module makes, in the longest folder that fits: it binds
    assert len(str(longest)) + LONGEST_NAME == MAX_SOCKET_PATH
