from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest
from typer.testing import CliRunner

from tailorbot._ports import held_port
from tailorbot.cli import app
from tailorbot.config import Settings
from tailorbot.runtime import Runtime
from tests.api.support import event, message, wait_until
from tests.helpers import http

TAILORBOT = str(Path(sys.executable).parent / "tailorbot")
# Bound on a server's start (several processes on a busy 2-core machine took 21 s before the
# heavy imports became lazy): readiness is polled, so only a hung start waits this long.
START_S = 120.0
runner = CliRunner()


def _start(args: list[str], data_dir: Path) -> subprocess.Popen[str]:
    """Run ``tailorbot ARGS --data-dir DATA_DIR`` with its output in a file: a pipe nobody
    reads while the test runs would fill with log lines and stall the server."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TAILORBOT_")}
    path = Path(tempfile.mkdtemp(prefix="tailorbot-cli-")) / "output.log"
    with path.open("w") as output:  # the child keeps its own copy of the descriptor
        process = subprocess.Popen(
            [TAILORBOT, *args, "--data-dir", str(data_dir)],
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            text=True,
        )
    _OUTPUTS[process.pid] = path
    return process


def _stop(process: subprocess.Popen[str], signum: int = signal.SIGINT) -> tuple[int, str]:
    """Signal the process and collect its exit status and output. (uvicorn exits 0 on
    SIGINT; on SIGTERM it shuts down just as gracefully, then dies of the signal.)"""
    if process.poll() is None:
        process.send_signal(signum)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    path = _OUTPUTS.pop(process.pid, None)
    if path is None:
        return process.returncode, ""
    output = path.read_text()
    shutil.rmtree(path.parent, ignore_errors=True)
    return process.returncode, output


_OUTPUTS: dict[int, Path] = {}  # pid -> the file its output goes to


def _healthy(url: str) -> bool:
    try:
        return http().get(url + "/healthz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real `tailorbot serve` process (with its in-process stream worker)."""
    holder = held_port()  # the port kept from other sockets until the server listens
    port = holder.getsockname()[1]
    process = _start(["serve", "--port", str(port)], tmp_path_factory.mktemp("serve"))
    url = f"http://127.0.0.1:{port}"
    try:
        with holder:  # released once the server listens (or failed to)
            wait_until(lambda: _healthy(url) or process.poll() is not None, "the server", START_S)
        assert process.poll() is None, _stop(process)[1]
        yield url
    finally:
        code, output = _stop(process)
        assert code == 0, output
        assert "Traceback" not in output


def test_help_lists_the_commands() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("serve", "worker", "replay", "features"):
        assert command in result.output


def test_settings_survive_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = Settings.load(
        data_dir=tmp_path, port=9001, api_key="k", redact_kinds=("email", "ip"), redact=False
    )
    for name, value in settings.to_env().items():
        monkeypatch.setenv(name, value)
    assert Settings.load() == settings


def test_bad_settings_are_one_clear_line(tmp_path: Path) -> None:
    missing = runner.invoke(app, ["serve", "--config", str(tmp_path / "nope.toml")])
    assert missing.exit_code == 1
    assert "error: config file not found" in missing.output
    bad_port = runner.invoke(app, ["serve", "--port", "70000", "--data-dir", str(tmp_path)])
    assert bad_port.exit_code == 1
    assert "invalid settings: port: Input should be less than or equal to 65535" in bad_port.output
    config = tmp_path / "tailorbot.toml"
    config.write_text('log_url = "redis://127.0.0.1:1/0?connect_timeout=0.5"\n')
    down = runner.invoke(app, ["serve", "--config", str(config), "--data-dir", str(tmp_path)])
    assert down.exit_code == 1
    assert "error: log unreachable" in down.output
    assert "Traceback" not in missing.output + bad_port.output + down.output


def test_replay_reports_bad_lines_and_features_prints_json(server: str, tmp_path: Path) -> None:
    lines = [
        orjson.dumps(message("replay-u1", "hello", intent="card_arrival")),
        orjson.dumps(event("rating", "replay-u1", score=5)),
        b"",
        b'{"type": "message", "user_id": ',
        orjson.dumps(event("sneeze", "replay-u1")),
        b"[1, 2]",
        orjson.dumps(message("replay-u2")),
    ]
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    result = runner.invoke(app, ["replay", str(path), "--url", server, "--batch", "2"])
    assert result.exit_code == 1, result.output
    assert "3 events accepted, 3 bad lines" in result.output
    assert "line 4: invalid JSON" in result.output
    assert "line 5: type: unknown event type 'sneeze'" in result.output
    assert "line 6: expected a JSON object, got list" in result.output

    def shown() -> dict | None:
        outcome = runner.invoke(app, ["features", "replay-u1", "--url", server])
        return orjson.loads(outcome.stdout) if outcome.exit_code == 0 else None

    body = wait_until(shown, "features of replay-u1")
    assert body["user_id"] == "replay-u1"
    assert body["features"]["recent_intents"] == ["card_arrival"]

    clean = tmp_path / "clean.jsonl"
    clean.write_bytes(orjson.dumps(message("replay-u3")) + b"\n")
    ok = runner.invoke(app, ["replay", str(clean), "--url", server])
    assert ok.exit_code == 0 and "1 events accepted, 0 bad lines" in ok.output


def test_replay_one_event_per_request_lists_refused_lines_and_goes_on(
    server: str, tmp_path: Path
) -> None:
    """With --batch 1 a batch the server refuses whole (422, or 413 for a text too long) is
    a bad line like in a larger batch, not the end of the replay."""
    lines = [
        orjson.dumps(message("batch1-u1", "hello")),
        orjson.dumps(event("sneeze", "batch1-u1")),
        orjson.dumps(message("batch1-u1", "x" * 6000)),
        orjson.dumps(message("batch1-u2", "still here")),
    ]
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    result = runner.invoke(app, ["replay", str(path), "--url", server, "--batch", "1"])
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.output
    assert "2 events accepted, 2 bad lines" in result.stdout, result.output
    assert "line 2: type: unknown event type 'sneeze'" in result.stderr
    assert "line 3: text: text is 6000 characters" in result.stderr
    assert "error:" not in result.stderr


def test_features_of_an_unknown_user(server: str) -> None:
    result = runner.invoke(app, ["features", "nobody-here", "--url", server])
    assert result.exit_code == 1
    assert "HTTP 404: no features for user 'nobody-here'" in result.output


def test_client_commands_explain_an_unreachable_server(tmp_path: Path, port: int) -> None:
    path = tmp_path / "events.jsonl"
    path.write_bytes(orjson.dumps(message()) + b"\n")
    url = f"http://127.0.0.1:{port}"  # held, never listening: nothing can answer there
    replay = runner.invoke(app, ["replay", str(path), "--url", url])
    assert replay.exit_code == 1 and f"error: cannot reach {url}/v1/events" in replay.output
    features = runner.invoke(app, ["features", "u1", "--url", url])
    assert features.exit_code == 1 and "error: cannot reach" in features.output
    missing = runner.invoke(app, ["replay", str(tmp_path / "none.jsonl")])
    assert missing.exit_code == 2 and "does not exist" in missing.output


def test_worker_applies_events_and_stops_on_sigterm(tmp_path: Path) -> None:
    process = _start(["worker"], tmp_path)
    runtime = Runtime(Settings.load(data_dir=tmp_path, run_worker_in_server=False))
    try:
        runtime.ingestion.ingest([message("worker-u1")])
        wait_until(lambda: runtime.stores.features.get("worker-u1"), "the standalone worker")
    finally:
        runtime.stop()
        code, output = _stop(process, signal.SIGTERM)
    assert code == 0, output
    assert "worker stopped" in output and "Traceback" not in output


def test_serve_with_two_processes(tmp_path: Path, port: int) -> None:
    process = _start(["serve", "--port", str(port), "--workers", "2"], tmp_path)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(
            lambda: _healthy(url) or process.poll() is not None, "two server processes", START_S
        )
        assert process.poll() is None
        response = http().post(url + "/v1/events", json=[message("multi-u1")], timeout=10)
        assert response.status_code == 202
        wait_until(
            lambda: http().get(url + "/v1/users/multi-u1/features", timeout=5).status_code == 200,
            "features served by either process",
        )
    finally:
        code, output = _stop(process)
    assert code == 0, output
    assert "Traceback" not in output


def _scraped(url: str) -> dict[str, float]:
    """The samples of one /metrics scrape that tell how the processes were summed, once it
    is checked that no family and no series appears twice."""
    text = http().get(url + "/metrics", timeout=30).text
    types = [line.split()[2] for line in text.splitlines() if line.startswith("# TYPE ")]
    assert len(types) == len(set(types)), sorted(t for t in types if types.count(t) > 1)
    series = [line.rpartition(" ")[0] for line in text.splitlines() if not line.startswith("#")]
    assert len(series) == len(set(series)), sorted(s for s in series if series.count(s) > 1)
    wanted = ('tailorbot_responses_total{route="/v1/users/{user_id}"', "tailorbot_server_processes")
    return {
        name: float(value)
        for name, _, value in (line.rpartition(" ") for line in text.splitlines())
        if name.startswith(wanted)
    }


def _own_count(socket: Path, sample: str) -> float:
    """``sample``'s value in the exposition one server process serves on ``socket``."""
    transport = httpx.HTTPTransport(uds=str(socket))
    with httpx.Client(transport=transport, timeout=30) as client:
        text = client.get("http://sibling/metrics").text
    return sum(
        float(line.rpartition(" ")[2]) for line in text.splitlines() if line.startswith(sample)
    )


def _siblings_folder(serve_pid: int) -> Path:
    """The folder `serve --workers N` gave its server processes (from a child's environment)."""
    for child in Path(f"/proc/{serve_pid}/task/{serve_pid}/children").read_text().split():
        environ = Path(f"/proc/{child}/environ").read_bytes().split(b"\0")
        for entry in environ:
            if entry.startswith(b"TAILORBOT_METRICS_SIBLINGS_DIR="):
                return Path(entry.partition(b"=")[2].decode())
    raise AssertionError("no server process has the metrics folder")


def _folded(folder: Path, name: str) -> bool:
    """Whether the process ``name`` has left its last metrics in the folder's ended record."""
    ended = folder / "ended.json"
    return ended.exists() and name in orjson.loads(ended.read_bytes())["processes"]


def _sockets(folder: Path, count: int) -> list[Path]:
    """The processes' sockets in ``folder`` once there are ``count`` (else none)."""
    found = sorted(folder.glob("*.sock"))
    return found if len(found) == count else []


def test_two_processes_answer_the_sum_of_their_metrics(tmp_path: Path, port: int) -> None:
    process = _start(["serve", "--port", str(port), "--workers", "2"], tmp_path)
    url = f"http://127.0.0.1:{port}"
    route_ok = 'tailorbot_responses_total{route="/v1/users/{user_id}",status="200"}'
    try:
        wait_until(
            lambda: _healthy(url) or process.poll() is not None, "two server processes", START_S
        )
        folder = _siblings_folder(process.pid)
        sockets = wait_until(lambda: _sockets(folder, 2), "both processes' sockets")
        for i in range(40):  # a new connection each: the processes share them out
            response = http().put(f"{url}/v1/users/sum-u{i}", json={"tier": "gold"}, timeout=10)
            assert response.status_code == 200
        for i in range(10):
            handoff = [event("handoff", f"sum-u{i}", reason="asked for a person")]
            assert http().post(url + "/v1/events", json=handoff, timeout=10).status_code == 202
        own = {path: _own_count(path, route_ok) for path in sockets}
        assert sum(own.values()) == 40, own
        # Every scrape and every dashboard poll, whichever process answers it, counts them all.
        for _ in range(6):
            scraped = _scraped(url)
            assert scraped[route_ok] == 40, scraped
            assert scraped['tailorbot_server_processes{state="answered"}'] == 2, scraped
            dashboard = http().get(url + "/v1/dashboard/data", timeout=30).json()
            assert dashboard["totals"]["handoffs"] == 10, dashboard["totals"]
        # A process that stops (SIGTERM; uvicorn's supervisor starts another) still counts.
        busiest = max(own, key=own.__getitem__)
        name = busiest.name.removesuffix(".sock")
        os.kill(int(name.partition("-")[0]), signal.SIGTERM)
        wait_until(lambda: _folded(folder, name), "its last metrics")
        wait_until(
            lambda: _scraped(url).get('tailorbot_server_processes{state="answered"}') == 2,
            "a new process in its place",
            START_S,
        )
        scraped = _scraped(url)
        assert scraped[route_ok] == 40, scraped
        assert scraped['tailorbot_server_processes{state="ended"}'] == 1, scraped
    finally:
        code, output = _stop(process)
    assert code == 0, output
    assert "Traceback" not in output
    assert not folder.exists()  # serve removes it on its way out
