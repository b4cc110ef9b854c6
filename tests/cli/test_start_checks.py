"""Long-running commands check what they need before they start: a bad knowledge base, an
unreachable backend or broker, a port in use is one ``error:`` line and a non-zero exit, not
a server answering 500 or a worker retrying forever. Run as processes: librdkafka and uvicorn
write to the real stderr, and a command that does not fail must not hang the test."""

from __future__ import annotations

import errno
import os
import select
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tailorbot._ports import held_port
from tailorbot.api.server import free_port
from tests.cli.support import one_error_line

TAILORBOT = str(Path(sys.executable).parent / "tailorbot")
LIMIT_S = 30  # a command that is still running by then did not fail at its start


def _run(
    args: list[str], pass_fds: tuple[int, ...] = (), **env: str
) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("TAILORBOT_")}
    try:
        return subprocess.run(
            [TAILORBOT, *args], env={**clean, **env}, capture_output=True, text=True,
            timeout=LIMIT_S, pass_fds=pass_fds,
        )  # fmt: skip
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"{args} still running after {LIMIT_S} s: {exc.stderr!r}")


def _one_line_error(result: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert result.returncode != 0, result.stdout + result.stderr
    one_error_line(result.stderr, *needles)


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        yield held.getsockname()[1]


def test_serve_with_a_missing_kb_dir_refuses_to_start(tmp_path: Path, port: int) -> None:
    missing = str(tmp_path / "nonexistent")
    args = ["serve", "--port", str(port), "--worker", "none"]
    result = _run([*args, "--data-dir", str(tmp_path)], TAILORBOT_KB_DIR=missing)
    _one_line_error(result, "knowledge base", missing)


def test_serve_with_a_control_variant_the_kb_lacks_refuses_to_start(
    tmp_path: Path, port: int
) -> None:
    args = ["serve", "--port", str(port), "--worker", "none", "--data-dir", str(tmp_path)]
    result = _run(args, TAILORBOT_CONTROL_VARIANT="concize")  # a typo of the KB's "concise"
    _one_line_error(result, "control_variant 'concize'", "concise, step_by_step, empathetic")


def test_serve_on_a_port_in_use_names_it(tmp_path: Path, busy_port: int) -> None:
    args = ["serve", "--port", str(busy_port), "--worker", "none", "--data-dir", str(tmp_path)]
    _one_line_error(_run(args), f"127.0.0.1:{busy_port}")


def test_serve_keeps_its_port_from_the_check_until_it_listens(tmp_path: Path) -> None:
    """While ``serve`` prepares (here: its log accepts the connection and never answers),
    its port stays bound, so that no other socket of the machine is given it: released
    after the check, it was taken in a benchmark's run by a socket bound meanwhile, and
    uvicorn could not listen. A bind without ``SO_REUSEADDR`` is refused meanwhile, once the
    test's own hold on the port (kept until serve has bound it) is gone."""
    holder = held_port()
    port = holder.getsockname()[1]
    with socket.create_server(("127.0.0.1", 0)) as silent:  # never accepts, never answers
        log_url = f"redis://127.0.0.1:{silent.getsockname()[1]}/0?socket_timeout=5"
        args = ["serve", "--port", str(port), "--worker", "none", "--data-dir", str(tmp_path)]
        clean = {k: v for k, v in os.environ.items() if not k.startswith("TAILORBOT_")}
        env = {**clean, "TAILORBOT_LOG_URL": log_url}
        serve = subprocess.Popen(
            [TAILORBOT, *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        try:
            # serve's log client connects in its start checks, after the port's check
            ready, _, _ = select.select([silent], [], [], LIMIT_S)
            assert ready, "serve never connected to its log"
            holder.close()
            with socket.socket() as other, pytest.raises(OSError) as refused:
                other.bind(("127.0.0.1", port))
            assert refused.value.errno == errno.EADDRINUSE
        finally:
            holder.close()
            _, stderr = serve.communicate(timeout=LIMIT_S)
    _one_line_error(subprocess.CompletedProcess(args, serve.returncode, "", stderr), "log")


def test_serve_on_an_unknown_host_names_it(tmp_path: Path) -> None:
    args = ["serve", "--host", "nonexistent.invalid", "--worker", "none"]
    _one_line_error(_run([*args, "--data-dir", str(tmp_path)]), "nonexistent.invalid")


def test_worker_with_an_unreachable_log_refuses_to_start(tmp_path: Path) -> None:
    result = _run(["worker", "--data-dir", str(tmp_path)],
                  TAILORBOT_LOG_URL="redis://127.0.0.1:1/0?connect_timeout=0.5")  # fmt: skip
    _one_line_error(result, "log unreachable")


def test_worker_metrics_on_a_port_in_use_names_it(tmp_path: Path, busy_port: int) -> None:
    result = _run(["worker", "--metrics-port", str(busy_port), "--data-dir", str(tmp_path)])
    _one_line_error(result, f"127.0.0.1:{busy_port}")


def test_worker_metrics_fd_that_is_not_open_names_it(tmp_path: Path) -> None:
    result = _run(["worker", "--metrics-fd", "987", "--data-dir", str(tmp_path)])
    _one_line_error(result, "--metrics-fd 987", "not an open socket")


def _worker_given(held: socket.socket, data_dir: Path) -> subprocess.CompletedProcess[str]:
    """``tailorbot worker --metrics-fd`` with ``held`` passed to it."""
    fd = held.fileno()
    return _run(["worker", "--metrics-fd", str(fd), "--data-dir", str(data_dir)], (fd,))


def test_worker_metrics_fd_that_does_not_listen_names_it(tmp_path: Path) -> None:
    with socket.socket() as bound:  # bound, never listening
        bound.bind(("127.0.0.1", 0))
        result = _worker_given(bound, tmp_path)
        _one_line_error(result, f"--metrics-fd {bound.fileno()}", "not listening")


def test_worker_metrics_fd_of_a_unix_socket_names_it(tmp_path: Path) -> None:
    with socket.socket(socket.AF_UNIX) as unix:
        unix.bind(str(tmp_path / "m.sock"))
        unix.listen()
        result = _worker_given(unix, tmp_path)
        _one_line_error(result, f"--metrics-fd {unix.fileno()}", "not a TCP socket")


def test_worker_metrics_port_and_fd_together_are_refused(tmp_path: Path) -> None:
    args = ["worker", "--metrics-port", str(free_port()), "--metrics-fd", "3"]
    _one_line_error(_run([*args, "--data-dir", str(tmp_path)]), "give one of them")


def test_rasa_consume_without_a_broker_is_one_line(tmp_path: Path) -> None:
    args = ["rasa", "consume", "--bootstrap", "127.0.0.1:1", "--connect-timeout", "1"]
    _one_line_error(_run([*args, "--data-dir", str(tmp_path)]), "127.0.0.1:1", "unreachable")
