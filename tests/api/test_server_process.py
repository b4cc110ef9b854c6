"""``ServerProcess`` keeps the port it chose until its server listens on it."""

from __future__ import annotations

import errno
import socket
from pathlib import Path

import pytest

from tailorbot.api.server import ServerProcess
from tailorbot.config import Settings


def _plain_bind(port: int) -> None:
    """Bind ``port`` without ``SO_REUSEADDR``, as a socket that must not share it would."""
    with socket.socket() as other:
        other.bind(("127.0.0.1", port))


def test_the_chosen_port_is_held_until_the_server_is_stopped(tmp_path: Path) -> None:
    server = ServerProcess(Settings.load(data_dir=tmp_path))
    with pytest.raises(OSError) as refused:  # held from the choice to the server's start
        _plain_bind(server.port)
    assert refused.value.errno == errno.EADDRINUSE
    server.stop()  # never started: the hold ends with it
    _plain_bind(server.port)


def test_a_port_given_is_not_held(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = ServerProcess(Settings.load(data_dir=tmp_path), port=port)
    _plain_bind(port)  # the caller's port: not bound here
    server.stop()
