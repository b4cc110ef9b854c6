"""Overload: what a `tailorbot serve` process does with more than it can take.

1. ``--bodies`` concurrent POST /v1/events of ~4.9 MB each: status counts, the server's
   peak RSS (VmHWM) and the p50/max latency.
2. ``--personalize`` concurrent POST /v1/personalize (closed loop, ``--rounds`` each): status
   counts and p50/max latency.

    .venv/bin/python benchmarks/overload.py [--bodies 100] [--personalize 400]
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import tempfile
import time
from collections import Counter
from pathlib import Path

import httpx
import orjson
from _harness import machine
from events_gen import make_events
from personalize import ensure_model

from tailorbot.api.server import ServerProcess
from tailorbot.config import Settings


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def fire(url: str, bodies: list[bytes], concurrency: int) -> tuple[Counter, list[float]]:
    statuses: Counter = Counter()
    latencies: list[float] = []
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=120) as client:

        async def one(body: bytes) -> None:
            started = time.perf_counter()
            try:
                response = await client.post(
                    url, content=body, headers={"content-type": "application/json"}
                )
                statuses[response.status_code] += 1
            except httpx.HTTPError as exc:
                statuses[type(exc).__name__] += 1
            latencies.append((time.perf_counter() - started) * 1000)

        await asyncio.gather(*(one(body) for body in bodies))
    return statuses, latencies


def report(name: str, statuses: Counter, latencies: list[float]) -> None:
    print(
        f"{name}: {dict(sorted(statuses.items(), key=str))}, latency p50 "
        f"{statistics.median(latencies):.0f} ms, max {max(latencies):.0f} ms"
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--bodies", type=int, default=100)
    ap.add_argument("--personalize", type=int, default=400)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--model-dir", default="/tmp/tailorbot-bench-model")
    args = ap.parse_args()
    ensure_model(Path(args.model_dir))
    data_dir = Path(tempfile.mkdtemp())
    shutil.copytree(Path(args.model_dir) / "models", data_dir / "models")
    settings = Settings.load(data_dir=data_dir, backpressure_max_lag=10**9)
    events = make_events(1000, 100)
    for event in events:
        event["metadata"] = {"note": "x" * 500}
        if event["type"] == "message":
            event["text"] = "y" * 4000
    big = orjson.dumps({"events": events})
    print(f"machine: {machine()}")
    print(
        f"one batch: {len(big) / 1e6:.1f} MB; settings: max_concurrent_requests "
        f"{settings.max_concurrent_requests}, max_inflight_body_bytes "
        f"{settings.max_inflight_body_bytes}"
    )
    with ServerProcess(settings) as server:
        assert server._proc is not None
        pid = server._proc.pid
        print(f"server RSS at start: {peak_rss_mb(pid):.0f} MB")
        statuses, latencies = asyncio.run(
            fire(server.url + "/v1/events", [big] * args.bodies, args.bodies)
        )
        report(f"{args.bodies} concurrent {len(big) / 1e6:.1f} MB batches", statuses, latencies)
        print(f"server peak RSS: {peak_rss_mb(pid):.0f} MB")
        body = orjson.dumps({"user_id": "u1", "session_id": "s1", "message": "card not here"})
        statuses, latencies = asyncio.run(
            fire(
                server.url + "/v1/personalize",
                [body] * (args.personalize * args.rounds),
                args.personalize,
            )
        )
        report(f"personalize, {args.personalize} concurrent", statuses, latencies)


if __name__ == "__main__":
    main()
