"""A decision's read of one user on Redis, awaited on the event loop.

With ``decision_threads = 0`` a server process computes each decision on its event loop.
On the embedded store the read of the user is a local SQLite read; on Redis it is a round
trip, which a blocking client would spend holding up every request of the process. This
reader sends the same ``MGET`` as :class:`~tailorbot.store.redis.RedisUserReader`, awaited
(:class:`~tailorbot._redis_pipelined.PipelinedRedis`: the reads of concurrent requests
pipelined on one connection), so the loop serves other requests until the answer arrives,
and no thread has to be handed each decision to wait on it.

Its connection belongs to the event loop that first uses it: a server's lifespan closes it
(:meth:`RedisAsyncUserReader.aclose`) on that loop, and a reader used from another loop (an
app started again) opens its own.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import redis

from tailorbot._redis import RedisAddress, failure
from tailorbot._redis_pipelined import PipelinedRedis
from tailorbot.store.base import ProfileAndRecord, StoreError


class UserKeys(Protocol):
    """What the blocking reader knows of a user's keys and values (one place for both)."""

    def keys(self, user_id: str) -> list[str]: ...

    def decoded(self, user_id: str, blobs: Sequence[Any]) -> ProfileAndRecord: ...


class RedisAsyncUserReader:
    """The profile and feature record of one user, awaited (:class:`StoreError` when Redis
    fails, as the blocking read)."""

    def __init__(self, address: RedisAddress, blocking: UserKeys) -> None:
        self.address = address
        self.blocking = blocking  # the blocking reader: its keys and decoding are these
        self._redis = PipelinedRedis(address)

    async def __call__(self, user_id: str) -> ProfileAndRecord:
        try:
            blobs = await self._redis.execute("MGET", *self.blocking.keys(user_id))
        except redis.RedisError as exc:
            raise failure(StoreError, exc) from exc
        return self.blocking.decoded(user_id, blobs)

    async def aclose(self) -> None:
        """Close the connection (on the loop that opened it)."""
        await self._redis.aclose()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.blocking!r})"
