"""What the awaited read of a user costs the event loop on Redis: one ``MGET`` of the user's
two keys, as a decision on the loop sends it (``store/redis_async.py``), through
tailorbot's pipelined connection (``_redis_pipelined.PipelinedRedis``) and, as the
reference in the same run, through redis-py's asyncio client (what the reader used before).

Both run on one uvloop loop in this process, alternated for ``--rounds`` rounds; each sends
``--reads`` reads, ``--concurrency`` at a time (1: one after another, as on an idle server;
more: as under load, where several requests wait for their user at once). The figure is
this process's CPU time per read (user and system, from ``time.process_time``: the loop's
cost, which a server process pays per decision), medians over the rounds, and its ratio to
redis-py's. ``redis-server`` runs beside it on the same machine; its own CPU is not counted.

    .venv/bin/python benchmarks/redis_read.py
    .venv/bin/python benchmarks/redis_read.py --concurrency 16
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import redis
import redis.asyncio
import uvloop
from _harness import machine

from tailorbot._redis import parse_address
from tailorbot._redis_pipelined import PipelinedRedis

Read = Callable[[list[str]], Awaitable[Any]]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--reads", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    prefix = f"tb-read-{uuid.uuid4().hex[:8]}"
    blocking = redis.Redis.from_url(args.url)
    # A profile and a feature record of typical sizes (a few hundred bytes each).
    keys = [f"{prefix}:profile:u1", f"{prefix}:features:u1"]
    blocking.mset({keys[0]: b"p" * 120, keys[1]: b"f" * 600})
    try:
        figures = uvloop.run(measure(args, keys))
    finally:
        blocking.delete(*keys)
    print(json.dumps({"benchmark": "redis_read", "machine": machine(), **figures}, indent=2))


async def measure(args: argparse.Namespace, keys: list[str]) -> dict[str, Any]:
    address = parse_address(args.url, {})[0]
    pipelined = PipelinedRedis(address)
    reference = redis.asyncio.Redis.from_url(
        address.address,
        socket_timeout=address.socket_timeout,
        socket_connect_timeout=address.connect_timeout,
        max_connections=1024,
    )
    readers: dict[str, Read] = {
        "redis-py asyncio client": lambda k: reference.mget(k),
        "tailorbot pipelined connection": lambda k: pipelined.execute("MGET", *k),
    }
    costs: dict[str, list[float]] = {name: [] for name in readers}
    try:
        for read in readers.values():  # connections opened, caches warm
            await timed_reads(read, keys, 500, args.concurrency)
        for _ in range(args.rounds):
            for name, read in readers.items():
                costs[name].append(await timed_reads(read, keys, args.reads, args.concurrency))
    finally:
        await pipelined.aclose()
        await reference.aclose()
    medians = {name: round(statistics.median(c), 1) for name, c in costs.items()}
    return {
        "reads_per_round": args.reads,
        "concurrency": args.concurrency,
        "rounds": args.rounds,
        "cpu_us_per_read": medians,
        "cpu_us_per_read_each_round": {n: [round(c, 1) for c in cs] for n, cs in costs.items()},
        "ratio_to_redis_py": round(
            medians["tailorbot pipelined connection"] / medians["redis-py asyncio client"], 3
        ),
    }


async def timed_reads(read: Read, keys: list[str], reads: int, concurrency: int) -> float:
    """This process's CPU µs per read, ``reads`` sent by ``concurrency`` tasks at once."""

    async def reader(count: int) -> None:
        for _ in range(count):
            await read(keys)

    started = time.process_time()
    await asyncio.gather(*(reader(reads // concurrency) for _ in range(concurrency)))
    return (time.process_time() - started) / (reads // concurrency * concurrency) * 1e6


if __name__ == "__main__":
    main()
