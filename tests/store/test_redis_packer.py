"""OneCallPacker: the blocking Redis client's commands packed by hiredis in one call, to the
bytes redis-py's own packer sends, and refused where redis-py refuses."""

from __future__ import annotations

import enum
import math
from typing import Any

import pytest
import redis
from redis.connection import Connection

from tailorbot._redis import OneCallPacker, parse_address
from tests.helpers import redis_namespace


class Level(enum.IntEnum):
    HIGH = 2


class Word(str):
    pass


ARGUMENTS = [
    "plain",
    "héllo ☃ 𝄞",  # noqa: RUF001 - UTF-8 of several widths
    "",
    b"\x00\xffbytes",
    0,
    -5,
    2**70,
    0.1,
    1 / 3,
    -0.0,
    5e-324,
    1.7976931348623157e308,
    math.inf,
    -math.inf,
    math.nan,
    1e16,
    Word("a str subclass"),
    bytearray(b"mutable"),
    memoryview(b"a view"),
    Level.HIGH,
]


def redis_py_packer() -> Any:
    """What redis-py packs a connection's commands with, left to itself."""
    return Connection()._command_packer


def wire(chunks: list[Any]) -> bytes:
    """What goes on the wire (redis-py sends a long value or a view as a chunk apart)."""
    return b"".join(bytes(chunk) for chunk in chunks)


@pytest.mark.parametrize(
    "value", ARGUMENTS, ids=[f"{n}-{type(v).__name__}" for n, v in enumerate(ARGUMENTS)]
)
def test_each_argument_is_sent_as_redis_py_sends_it(value: object) -> None:
    ours, theirs = OneCallPacker(), redis_py_packer()
    for command in ("SET", b"SET"):
        args = (command, "key", value)
        assert wire(ours.pack(*args)) == wire(theirs.pack(*args))


def test_a_long_command_is_sent_as_redis_py_sends_it() -> None:
    args: list[object] = ["EVALSHA", "f" * 40, 3, "k1", "k2", "k3"]
    for i in range(200):
        args += [f"{i:032x}", f"user-{i}", b"r" * 900, float(i) / 7, i]
    assert wire(OneCallPacker().pack(*args)) == wire(redis_py_packer().pack(*args))


def test_a_command_of_several_words_is_split_as_redis_py_splits_it() -> None:
    for command in ("CONFIG GET", b"CONFIG GET", "JSON.SET"):
        args = (command, "maxmemory")
        packed = wire(OneCallPacker().pack(*args))
        assert packed == wire(redis_py_packer().pack(*args))
    assert wire(OneCallPacker().pack("CONFIG GET", "x")).startswith(b"*3\r\n")


@pytest.mark.parametrize(
    "value", [True, None, object(), [1], {"a": 1}], ids=["bool", "none", "object", "list", "dict"]
)
def test_what_redis_py_refuses_is_refused_alike(value: object) -> None:
    with pytest.raises(redis.DataError):
        OneCallPacker().pack("SET", "key", value)
    with pytest.raises(redis.DataError):
        redis_py_packer().pack("SET", "key", value)


def test_text_that_utf8_cannot_encode_fails_alike() -> None:
    with pytest.raises(UnicodeEncodeError):
        OneCallPacker().pack("SET", "key", "\ud800")
    with pytest.raises(UnicodeEncodeError):
        redis_py_packer().pack("SET", "key", "\ud800")


@pytest.mark.integration
def test_the_backends_client_packs_with_it_against_a_real_server() -> None:
    with redis_namespace() as prefix:
        address, _ = parse_address("redis://127.0.0.1:6379/0", {})
        client = address.client()
        try:
            packer = client.connection_pool.connection_kwargs["command_packer"]
            assert isinstance(packer, OneCallPacker)
            script = client.register_script(
                "for i = 1, #KEYS do redis.call('SET', KEYS[i], ARGV[i]) end return #KEYS"
            )
            keys = [f"{prefix}:k{i}" for i in range(300)]
            values: list[object] = [f"v{i} ☃" if i % 3 else i / 7 for i in range(300)]
            pipe = client.pipeline(transaction=False)
            script(keys=keys, args=values, client=pipe)
            pipe.get(keys[1])
            assert pipe.execute() == [300, "v1 ☃".encode()]
            stored = client.mget(keys[:4])
            assert stored == [b"0.0", "v1 ☃".encode(), "v2 ☃".encode(), repr(3 / 7).encode()]
        finally:
            client.close()
