"""What the Redis backends share: URL options, the client, and error translation.

A backend URL is redis-py's own (``redis://[user:password@]host:port/db`` or ``rediss://``
for TLS) plus tailorbot's query options, which are taken out before redis-py sees the URL
(keyword arguments of ``from_url`` override them):

* ``prefix`` (default ``tailorbot``): the key namespace; every key starts with ``{prefix}:``.
* ``socket_timeout`` / ``connect_timeout`` (seconds, default 5 / 2).
* backend options (``session_timeout`` for the log, ``record_ttl`` and ``decision_ttl`` for
  the store), each documented by its backend.

>>> url = "redis://127.0.0.1:6379/0?prefix=shop&session_timeout=5"
>>> client, options = parse_url(url, {"session_timeout": positive_float})
>>> options
{'prefix': 'shop', 'session_timeout': 5.0}
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple, ParamSpec, TypeVar
from urllib.parse import parse_qsl, urlsplit, urlunsplit

import hiredis
import redis
from redis._parsers.encoders import Encoder
from redis.backoff import NoBackoff
from redis.connection import HiredisRespSerializer, PythonRespSerializer
from redis.retry import Retry

from tailorbot._backends import positive_float, typed_options

P = ParamSpec("P")
R = TypeVar("R")


READY_PROBE_TTL_MS = 10_000  # the readiness probe's key (a write: ping) expires by itself


def optional_seconds(text: str | float | None) -> float | None:
    """A duration option where empty (or ``none``) means never."""
    if text is None or str(text).strip().lower() in {"", "none"}:
        return None
    return positive_float(text)


def plain_prefix(text: str) -> str:
    """A key namespace: non-empty, no spaces or glob characters (it is used in SCAN patterns)."""
    if not text or any(c.isspace() or c in "*?[]" for c in text):
        raise ValueError("must be a non-empty word without spaces or * ? [ ]")
    return text


CONNECTION_OPTIONS: dict[str, Callable[[str], Any]] = {
    "prefix": plain_prefix,
    "socket_timeout": positive_float,
    "connect_timeout": positive_float,
}


class OneCallPacker:
    """Commands packed by hiredis in one call, for the blocking client's connections.

    redis-py's own hiredis packer first runs every argument through its Python encoder (a
    generator step and a call each): a batch of 75 decisions, one script call of 530
    arguments, took 627 µs to pack against 91 µs here (``timeit``, docs/benchmarks.md).
    hiredis encodes ``str``, ``bytes``, ``int`` and ``float`` itself, to the same bytes.
    Anything else (a ``bool``, a ``bytearray``, an enum), and a command name that is not
    one word (``"CONFIG GET"``: redis-py sends its words apart), goes to redis-py's packer,
    which converts it or refuses it with :class:`redis.DataError` as before.

    >>> OneCallPacker().pack("SET", "k", 1.5)
    [b'*3\\r\\n$3\\r\\nSET\\r\\n$1\\r\\nk\\r\\n$3\\r\\n1.5\\r\\n']
    """

    def __init__(self, buffer_cutoff: int = 6000) -> None:
        self.buffer_cutoff = buffer_cutoff  # redis-py's, for what its packer chunks
        encode = Encoder("utf-8", "strict", False).encode  # redis-py's defaults, as used here
        fallback = PythonRespSerializer(buffer_cutoff, encode)
        self._redis_py = HiredisRespSerializer(fallback.pack, encode)

    def pack(self, *args: Any) -> list[Any]:
        command = args[0]
        if type(command) in (str, bytes) and command.isalpha():
            try:
                return [hiredis.pack_command(args)]
            except TypeError:  # an argument hiredis does not take: redis-py's rules
                pass
        return self._redis_py.pack(*args)


class RedisAddress(NamedTuple):
    """Where a backend's Redis is and how long its calls may take: what its clients, the
    blocking one and the event loop's (:mod:`tailorbot._redis_pipelined`), are made from."""

    address: str  # the URL without tailorbot's query options
    socket_timeout: float
    connect_timeout: float

    def client(self) -> redis.Redis:
        """A client (connections open lazily, at the first command).

        Commands are never retried by the client: a retried append or increment whose
        first attempt reached the server would be applied twice. Idle pooled connections
        are health-checked instead, so a restarted server costs no failed request.
        """
        return redis.Redis.from_url(
            self.address,
            retry=Retry(NoBackoff(), 0),
            socket_timeout=self.socket_timeout,
            socket_connect_timeout=self.connect_timeout,
            health_check_interval=15,
            command_packer=OneCallPacker(),
        )


def parse_url(
    url: str,
    known: Mapping[str, Callable[[str], Any]],
    overrides: Mapping[str, Any] | None = None,
) -> tuple[redis.Redis, dict[str, Any]]:
    """A client for ``url`` and the backend's typed options (``known`` ones and ``prefix``),
    keyword ``overrides`` winning over the URL's query; unknown names are errors."""
    address, options = parse_address(url, known, overrides)
    return address.client(), options


def parse_address(
    url: str,
    known: Mapping[str, Callable[[str], Any]],
    overrides: Mapping[str, Any] | None = None,
) -> tuple[RedisAddress, dict[str, Any]]:
    """As :func:`parse_url`, with the address the clients are made from instead of one."""
    parts = urlsplit(url)
    if parts.scheme not in {"redis", "rediss"}:
        raise ValueError(f"not a Redis URL: {url!r} (expected redis://host:port/db)")
    converters = {**CONNECTION_OPTIONS, **known}
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    options = typed_options(query, overrides or {}, converters, "Redis")
    address = RedisAddress(
        urlunsplit((parts.scheme, parts.netloc, parts.path, "", "")),
        options.pop("socket_timeout", 5.0),
        options.pop("connect_timeout", 2.0),
    )
    return address, options


def failure(error: type[Exception], exc: redis.RedisError) -> Exception:
    """``exc`` as the backend's ``error`` (``LogError`` / ``StoreError``)."""
    return error(f"redis: {type(exc).__name__}: {exc}")


def translate_errors(error: type[Exception]) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Decorate a backend method so that any redis-py failure surfaces as ``error``
    (``LogError`` / ``StoreError``), which the API turns into HTTP 503."""

    def decorate(method: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(method)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            try:
                return method(*args, **kwargs)
            except redis.RedisError as exc:
                raise failure(error, exc) from exc

        return wrapper

    return decorate


def key_text(value: Any) -> str:
    """A Redis reply (bytes) as text."""
    return value.decode() if isinstance(value, bytes) else str(value)
