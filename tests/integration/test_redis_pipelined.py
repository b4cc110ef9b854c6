"""The event loop's Redis connection (``_redis_pipelined.PipelinedRedis``): concurrent
commands pipelined on one connection, each given its own reply; timeouts, lost connections,
credentials, the database and TLS.

Talks to the shared Redis on 127.0.0.1:6379 under a fresh key prefix (deleted afterwards),
to servers of its own that never answer, and to a private TLS ``redis-server``.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import threading
import uuid
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
import redis

from tailorbot._redis import parse_address
from tailorbot._redis_pipelined import PipelinedRedis
from tests.helpers import IN_CI, REDIS_URL, closed_port, redis_namespace, wait_until
from tests.integration.cluster import Process, require_redis_server_binary

pytestmark = pytest.mark.integration

HANG_S = 30.0  # only stops a hung test
T = TypeVar("T")


def pipelined(url: str) -> PipelinedRedis:
    return PipelinedRedis(parse_address(url, {})[0])


def run(client: PipelinedRedis, body: Callable[[], Awaitable[T]]) -> T:
    """``body`` on a new event loop, the client's connection closed afterwards."""

    async def main() -> T:
        try:
            return await asyncio.wait_for(body(), HANG_S)
        finally:
            await client.aclose()

    return asyncio.run(main())


@pytest.fixture
def prefix() -> Iterator[str]:
    with redis_namespace() as prefix:
        yield prefix


def test_concurrent_commands_each_get_their_own_reply(prefix: str) -> None:
    blocking = redis.Redis.from_url(REDIS_URL)
    keys = [f"{prefix}:k{i}" for i in range(300)]
    blocking.mset({key: f"value {i}".encode() for i, key in enumerate(keys)})
    client = pipelined(REDIS_URL)

    async def body() -> list[Any]:
        # An error reply among them (GET of a hash) fails its own command only.
        blocking.hset(f"{prefix}:hash", "f", "v")
        commands = [client.execute("MGET", key, f"{prefix}:none") for key in keys]
        commands.insert(150, client.execute("GET", f"{prefix}:hash"))
        return await asyncio.gather(*commands, return_exceptions=True)

    replies = run(client, body)
    error = replies.pop(150)
    assert isinstance(error, redis.ResponseError) and "WRONGTYPE" in str(error)
    assert replies == [[f"value {i}".encode(), None] for i in range(300)]


def test_a_cancelled_command_does_not_shift_the_replies(prefix: str) -> None:
    redis.Redis.from_url(REDIS_URL).set(f"{prefix}:k", b"mine")
    client = pipelined(REDIS_URL)

    async def body() -> Any:
        await client.execute("PING")  # connected: the BLPOP below is sent at once
        # BLPOP on an empty list answers (nil) only after its 0.5 s: cancelled before that,
        # its reply must still be taken for it, not for the GET sent after it.
        waiting = asyncio.ensure_future(client.execute("BLPOP", f"{prefix}:empty", "0.5"))
        await asyncio.sleep(0.05)
        waiting.cancel()
        return await client.execute("GET", f"{prefix}:k")

    assert run(client, body) == b"mine"


def test_a_killed_connection_is_opened_again(prefix: str) -> None:
    blocking = redis.Redis.from_url(REDIS_URL)
    blocking.set(f"{prefix}:k", b"v")
    client = pipelined(REDIS_URL)

    async def body() -> list[Any]:
        connection_id = await client.execute("CLIENT", "ID")
        blocking.client_kill_filter(_id=connection_id)
        outcomes: list[Any] = []
        while not outcomes or isinstance(outcomes[-1], Exception):
            try:
                outcomes.append(await client.execute("GET", f"{prefix}:k"))
            except redis.RedisError as exc:
                outcomes.append(exc)
                await asyncio.sleep(0.05)
        return outcomes

    outcomes = run(client, body)
    # At most the command sent before the loop saw the connection close fails, as a lost
    # connection; the next opens a new one.
    assert outcomes[-1] == b"v" and len(outcomes) <= 2, outcomes
    assert all(isinstance(o, redis.ConnectionError) for o in outcomes[:-1]), outcomes


class SilentServer:
    """A TCP server that accepts connections and reads from them, never answering."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.accepted: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self.listener.accept()
            except OSError:
                return
            self.accepted.append(connection)

    @staticmethod
    def wait_closed(connection: socket.socket) -> None:
        """Return once the client closed ``connection`` (what it sent is read and dropped);
        fail if it stays open."""
        connection.settimeout(HANG_S)
        try:
            while connection.recv(65536):
                pass
        except ConnectionResetError:  # closed with unread data: a reset
            pass
        except TimeoutError:
            pytest.fail("the client left its connection open")

    def close(self) -> None:
        self.listener.close()
        for connection in self.accepted:
            connection.close()


def test_commands_not_answered_in_time_all_fail_and_the_connection_is_replaced() -> None:
    server = SilentServer()
    client = pipelined(f"redis://127.0.0.1:{server.port}/0?socket_timeout=0.3")

    async def body() -> list[Any]:
        first = await asyncio.gather(
            client.execute("GET", "a"), client.execute("GET", "b"), return_exceptions=True
        )
        second = await asyncio.gather(client.execute("GET", "c"), return_exceptions=True)
        return first + second

    try:
        outcomes = run(client, body)
        assert all(isinstance(o, redis.TimeoutError) for o in outcomes), outcomes
        # The timed-out connection was closed, and a new one opened for the next command.
        wait_until(lambda: len(server.accepted) == 2, "the second connection")
        server.wait_closed(server.accepted[0])
    finally:
        server.close()


def test_closing_while_connecting_closes_the_new_connection() -> None:
    server = SilentServer()
    client = pipelined(f"redis://127.0.0.1:{server.port}/0?socket_timeout=20")

    async def body() -> Any:
        command = asyncio.ensure_future(client.execute("GET", "a"))
        await asyncio.sleep(0)  # its connection is being opened
        await client.aclose()
        return await asyncio.gather(command, return_exceptions=True)

    try:
        (outcome,) = run(client, body)
        assert isinstance(outcome, redis.ConnectionError), outcome
        wait_until(lambda: len(server.accepted) == 1, "the connection")
        server.wait_closed(server.accepted[0])
    finally:
        server.close()


def test_a_client_used_on_a_closed_loop_serves_the_next_one(prefix: str) -> None:
    redis.Redis.from_url(REDIS_URL).set(f"{prefix}:k", b"v")
    client = pipelined(REDIS_URL)
    assert asyncio.run(client.execute("GET", f"{prefix}:k")) == b"v"  # left open
    asyncio.run(client.aclose())  # on another loop: the first one's connection is not its
    assert run(client, lambda: client.execute("GET", f"{prefix}:k")) == b"v"


def test_a_refused_connection_is_a_connection_error() -> None:
    client = pipelined(f"redis://127.0.0.1:{closed_port()}/0")
    with pytest.raises(redis.ConnectionError, match="error connecting"):
        run(client, lambda: client.execute("PING"))


@pytest.fixture
def acl_user() -> Iterator[tuple[str, str]]:
    blocking = redis.Redis.from_url(REDIS_URL)
    name, password = f"tbtest-{uuid.uuid4().hex[:12]}", uuid.uuid4().hex
    blocking.acl_setuser(
        name, enabled=True, passwords=[f"+{password}"], keys=["*"], commands=["+@all"]
    )
    try:
        yield name, password
    finally:
        blocking.acl_deluser(name)


def test_the_urls_credentials_and_database_are_used(prefix: str, acl_user: tuple[str, str]) -> None:
    name, password = acl_user
    in_db_3 = redis.Redis.from_url("redis://127.0.0.1:6379/3")
    in_db_3.set(f"{prefix}:k", b"in db 3")
    try:
        client = pipelined(f"redis://{name}:{password}@127.0.0.1:6379/3")
        assert run(client, lambda: client.execute("GET", f"{prefix}:k")) == b"in db 3"
        refused = pipelined(f"redis://{name}:wrong@127.0.0.1:6379/3")
        with pytest.raises(redis.AuthenticationError, match="WRONGPASS"):
            run(refused, lambda: refused.execute("GET", f"{prefix}:k"))
    finally:
        in_db_3.delete(f"{prefix}:k")


def _require_openssl() -> None:
    if shutil.which("openssl"):
        return
    if IN_CI:
        pytest.fail("openssl is not installed (the TLS test makes its certificates)")
    pytest.skip("openssl is not installed")


def _certificates(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its key."""
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            "-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1",
            "-addext", "subjectAltName=IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


def test_rediss_checks_the_servers_certificate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    require_redis_server_binary()
    _require_openssl()
    cert, key = _certificates(tmp_path)
    port = closed_port()
    process = Process(
        [
            "redis-server", "--port", "0", "--tls-port", str(port), "--bind", "127.0.0.1",
            "--tls-cert-file", cert, "--tls-key-file", key, "--tls-ca-cert-file", cert,
            "--tls-auth-clients", "no", "--save", "", "--dir", tmp_path,
        ],
        dict(os.environ),
        tmp_path / "redis-server.out",
    )  # fmt: skip
    try:
        ready = redis.Redis(
            host="127.0.0.1", port=port, ssl=True, ssl_ca_certs=str(cert), socket_timeout=1
        )

        def answers() -> bool:
            if not process.alive():
                raise AssertionError(process.tail())
            try:
                return bool(ready.ping())
            except redis.RedisError:
                return False

        wait_until(answers, "the TLS redis-server", limit_s=20)
        url = f"rediss://127.0.0.1:{port}/0"
        untrusted = pipelined(url)  # the certificate is self-signed: not trusted by default
        with pytest.raises(redis.ConnectionError, match="CERTIFICATE_VERIFY_FAILED"):
            run(untrusted, lambda: untrusted.execute("PING"))
        monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # now it is
        trusted = pipelined(url)
        assert run(trusted, lambda: trusted.execute("PING")) == b"PONG"
    finally:
        process.stop()
