"""HTTP ingestion throughput: batches of 100 events into one `tailorbot serve` process.

Closed loop with a few keep-alive connections (the point here is the ceiling, not latency):
measures how fast events are *accepted* (2xx) and how fast they are *applied* by the stream
processor of the server (events_applied reaching the total). ``--warmup-events`` are sent and
applied first and not counted: the worker's start (a Kafka group join takes seconds) and its
first batches are not the steady state.

    .venv/bin/python benchmarks/ingest.py --events 200000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time

from _harness import add_backend_args, machine, metric_sum, quiet_collector, scrape, server_for
from cpu import tree_cpu_seconds
from events_gen import batches, make_events
from loadgen import build_request, connect


async def send_all(url: str, bodies: list[bytes], connections: int) -> tuple[float, int]:
    host, port = url.removeprefix("http://").split(":")
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    for b in bodies:
        queue.put_nowait(b)
    throttled = 0

    async def sender() -> None:
        nonlocal throttled
        conn = await connect(host, int(port))
        while not queue.empty():
            body = queue.get_nowait()
            while True:
                status = await conn.request(build_request(host, "/v1/events", body))
                if status == 429:  # backpressure: the processor lags; retry shortly
                    throttled += 1
                    await asyncio.sleep(0.05)
                    continue
                if status >= 300:
                    raise RuntimeError(f"ingestion answered {status}")
                break
        conn.close()

    start = time.perf_counter()
    await asyncio.gather(*(sender() for _ in range(connections)))
    return time.perf_counter() - start, throttled


def wait_applied(metrics_url: str, count: int, timeout_s: float = 120.0) -> None:
    deadline = time.monotonic() + timeout_s
    while metric_sum(scrape(metrics_url), "tailorbot_events_applied_total") < count:
        if time.monotonic() > deadline:
            raise RuntimeError(f"the warm-up's {count} events were not applied in time")
        time.sleep(0.05)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--events", type=int, default=200_000)
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--users", type=int, default=20_000)
    ap.add_argument("--connections", type=int, default=8)
    ap.add_argument("--warmup-events", type=int, default=2000)
    add_backend_args(ap)
    args = ap.parse_args()

    events = make_events(args.warmup_events + args.events, args.users)
    warmup = batches(events[: args.warmup_events], args.batch)
    bodies = batches(events[args.warmup_events :], args.batch)
    with server_for(args) as (url, metrics_url, backends, pid):
        asyncio.run(send_all(url, warmup, 1))
        wait_applied(metrics_url, args.warmup_events)
        applied_before = metric_sum(scrape(metrics_url), "tailorbot_events_applied_total")
        cpu = tree_cpu_seconds(pid)
        t0 = time.perf_counter()
        with quiet_collector():
            accept_s, throttled = asyncio.run(send_all(url, bodies, args.connections))
        while (
            metric_sum(scrape(metrics_url), "tailorbot_events_applied_total") - applied_before
            < args.events
        ):
            if time.perf_counter() - t0 > 600:
                raise RuntimeError("events were not applied within 10 minutes")
            time.sleep(0.05)
        applied_s = time.perf_counter() - t0
        used = {role: seconds - cpu[role] for role, seconds in tree_cpu_seconds(pid).items()}
    print(
        json.dumps(
            {
                "benchmark": "ingest",
                "machine": machine(),
                "backends": backends,
                "events": args.events,
                "batch": args.batch,
                "users": args.users,
                "connections": args.connections,
                "accepted_events_per_s": round(args.events / accept_s),
                "accepted_and_applied_events_per_s": round(args.events / applied_s),
                "throttled_429": throttled,
                # Per CPU-second of each side: what one core would sustain on a quiet machine.
                "api_events_per_cpu_s": round(args.events / used["api"]) if used["api"] else None,
                "worker_events_per_cpu_s": (
                    round(args.events / used["worker"]) if used["worker"] else None
                ),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
