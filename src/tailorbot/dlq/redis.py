"""Dead letters in Redis, beside the online stores (same URL and ``prefix``).

Keys: ``{prefix}:dlq`` — hash: letter id -> the letter as JSON (its value base64-encoded);
``{prefix}:dlq:order`` — sorted set of letter ids by failure time.

>>> from tailorbot.dlq.base import DeadLetter
>>> letters = open_dead_letters("redis://127.0.0.1:6379/0?prefix=doc-dlq")
>>> letters.put([DeadLetter("g", 0, 5, "u1", b"{}", "refused", 1.0)])
>>> [d.letter_id for d in letters.list()], letters.drop(["g:0:5"]), letters.count()
(['g:0:5'], 1, 0)
>>> letters.close()
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Sequence
from typing import Any

import orjson
import redis

from tailorbot._redis import optional_seconds, parse_url, translate_errors
from tailorbot.dlq.base import DeadLetter, DeadLetterError, DeadLetterStore


class RedisDeadLetters(DeadLetterStore):
    def __init__(self, client: redis.Redis, prefix: str) -> None:
        self.client = client
        self.prefix = prefix
        self._hash = f"{prefix}:dlq"
        self._order = f"{prefix}:dlq:order"

    @translate_errors(DeadLetterError)
    def put(self, letters: Sequence[DeadLetter]) -> None:
        pipe = self.client.pipeline(transaction=True)
        for letter in letters:
            body = {
                "group": letter.group,
                "partition": letter.partition,
                "offset": letter.offset,
                "key": letter.key,
                "value": base64.b64encode(letter.value).decode(),
                "reason": letter.reason,
                "failed_at": letter.failed_at,
            }
            pipe.hset(self._hash, letter.letter_id, orjson.dumps(body))
            pipe.zadd(self._order, {letter.letter_id: letter.failed_at})
        pipe.execute()

    @translate_errors(DeadLetterError)
    def list(self, limit: int = 100) -> list[DeadLetter]:
        ids: list[Any] = list(self.client.zrange(self._order, 0, limit - 1))
        if not ids:
            return []
        letters = []
        for raw in self.client.hmget(self._hash, ids):
            if raw is None:
                continue  # dropped between the two reads
            body = orjson.loads(raw)
            body["value"] = base64.b64decode(body["value"])
            letters.append(DeadLetter(**body))
        return letters

    @translate_errors(DeadLetterError)
    def drop(self, letter_ids: Iterable[str]) -> int:
        ids = list(letter_ids)
        if not ids:
            return 0
        pipe = self.client.pipeline(transaction=True)
        pipe.hdel(self._hash, *ids)
        pipe.zrem(self._order, *ids)
        deleted, _ = pipe.execute()
        return int(deleted)

    @translate_errors(DeadLetterError)
    def erase_user(self, user_id: str) -> int:
        # No index by key: the letters are few (each is an incident), so read them all.
        ids = [
            letter_id
            for letter_id, raw in self.client.hscan_iter(self._hash, count=500)
            if orjson.loads(raw)["key"] == user_id
        ]
        return self.drop(letter_id.decode() for letter_id in ids)

    @translate_errors(DeadLetterError)
    def count(self) -> int:
        return int(self.client.hlen(self._hash))

    @translate_errors(DeadLetterError)
    def ping(self) -> None:
        self.client.ping()

    def close(self) -> None:
        self.client.close()


def open_dead_letters(url: str, **options: Any) -> RedisDeadLetters:
    """The dead letters at ``redis://host:port/db?prefix=...`` (the store's URL: its other
    options belong to the store)."""
    known = {"record_ttl": optional_seconds, "decision_ttl": optional_seconds}
    client, typed = parse_url(url, known, options)
    return RedisDeadLetters(client, typed.get("prefix", "tailorbot"))
