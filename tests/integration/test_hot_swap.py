"""The learning loop on a logged history, under load: ``tailorbot serve --workers 2`` keeps
answering while ``dataset build`` → ``train`` (with a search) → ``audit`` → ``models
promote`` run, and both processes move to the new version without a restart.

Requests open a new connection each (no keep-alive), so they spread over both processes; the
test promotes mid-load and then waits until a long run of answers all carry the new version
and the server's summed /metrics says that neither process serves the old one.
No request may fail, before, during or after the swap.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from tailorbot.cli import app
from tailorbot.models import registry
from tests.helpers import closed_port, http, wait_until
from tests.integration.cluster import TAILORBOT, Process, tailorbot_env
from tests.models.pipeline.support import write_support_log

pytestmark = pytest.mark.integration
WAIT_S = 60.0
RUN_OF_NEW = 60  # consecutive answers with the new version that end the test


class Load:
    """Threads posting /v1/personalize until stopped; every answer's status and version."""

    def __init__(self, base_url: str, threads: int = 4) -> None:
        self.base_url = base_url
        self.answers: list[tuple[int, str | None]] = []
        self.errors: list[str] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, args=(i,)) for i in range(threads)]

    def _run(self, n: int) -> None:
        limits = httpx.Limits(max_keepalive_connections=0)
        with httpx.Client(base_url=self.base_url, timeout=30, limits=limits) as client:
            i = 0
            while not self._stop.is_set():
                body = {"user_id": f"u{n}-{i % 7}", "session_id": f"s{n}", "message": "my card?"}
                try:
                    response = client.post("/v1/personalize", json=body)
                except httpx.HTTPError as exc:
                    with self._lock:
                        self.errors.append(repr(exc))
                    continue
                version = None
                if response.status_code == 200:
                    version = response.json()["model_versions"]["intent"]
                with self._lock:
                    self.answers.append((response.status_code, version))
                i += 1

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)

    def last_versions(self, n: int) -> list[str | None]:
        with self._lock:
            return [v for _, v in self.answers[-n:]]


def _tailorbot(*args: object) -> str:
    """A command in this process (the server processes are the ones under test); its output."""
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return str(result.stdout)


def _serving_only(port: int, new: str, old: str) -> bool:
    """Whether the server's /metrics, the sum of both processes, says that they serve
    ``new`` and neither serves ``old`` any more."""
    response = http().get(f"http://127.0.0.1:{port}/metrics", timeout=30)
    if response.status_code != 200:  # a process not answering: the sum cannot tell
        return False
    served = {
        line.rpartition(" ")[0]: float(line.rpartition(" ")[2])
        for line in response.text.splitlines()
        if line.startswith('tailorbot_model_info{kind="intent"')
    }
    # 1 in the sum while any process serves a version; a replaced version's series goes
    version = 'tailorbot_model_info{{kind="intent",version="{}"}}'.format
    return (
        'tailorbot_server_processes{state="answered"} 2.0' in response.text
        and served.get(version(new)) == 1.0
        and version(old) not in served
    )


def test_the_loop_swaps_both_server_processes_without_a_failed_request(tmp_path: Path) -> None:
    write_support_log(tmp_path, label_share=0.6)
    built = tmp_path / "rows.jsonl"
    _tailorbot("dataset", "build", "--data-dir", tmp_path, "--out", built)
    first_run = _tailorbot("train", "--data", built, "--data-dir", tmp_path, "--no-search",
                           "--folds", "2")  # fmt: skip
    assert "is now current" in first_run
    first = registry.current_version(tmp_path)
    port = closed_port()
    env = tailorbot_env(data_dir=tmp_path, port=port, model_poll_s=0.5)
    server = Process([TAILORBOT, "serve", "--workers", "2", "--log-level", "warning"], env,
                     tmp_path / "serve.out")  # fmt: skip
    load = Load(f"http://127.0.0.1:{port}")
    try:

        def serving() -> bool:
            assert server.alive(), server.tail()
            try:
                return http().get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(serving, "the server to accept connections", WAIT_S)
        load.start()
        wait_until(lambda: len(load.answers) >= 100, "answers from the old version", WAIT_S)
        searched = _tailorbot("train", "--data", built, "--data-dir", tmp_path, "--trials", "2",
                              "--folds", "2", "--no-promote", "--json")  # fmt: skip
        trained = json.loads(searched)
        second = trained["version"]
        assert trained["search"]["trials"] == 2 and registry.current_version(tmp_path) == first
        audited = json.loads(_tailorbot("audit", "--data-dir", tmp_path, "--model", second,
                                        "--json", "--gate"))  # fmt: skip
        assert audited["gate"]["passed"] is True
        assert "is now current" in _tailorbot("models", "promote", second, "--data-dir", tmp_path)
        assert registry.current_version(tmp_path) == second
        # A run of new answers can come from one process alone (the kernel hands the
        # connections out unevenly); the summed /metrics says when no process serves the old.
        wait_until(
            lambda: (
                load.last_versions(RUN_OF_NEW) == [second] * RUN_OF_NEW
                and _serving_only(port, second, first)
            ),
            "both processes to answer with the new version",
            WAIT_S,
        )
    finally:
        load.stop()
        server.stop()
    assert load.errors == []
    assert {status for status, _ in load.answers} == {200}, server.tail()
    versions = [v for _, v in load.answers]
    assert versions[0] == first and versions[-1] == second
    switched = versions.index(second)
    assert set(versions[:switched]) == {first}
