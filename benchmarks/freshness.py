"""Event-to-feature freshness at a fixed arrival rate (open loop).

Sends ``--rate`` events/s to one `tailorbot serve` process (in batches of ``--batch`` every
``batch/rate`` seconds, on schedule whatever the server does) and reads the server's
``tailorbot_event_to_feature_seconds`` histogram: for each event, the wall time from its
acceptance at the door to the write of the user's updated features. Quantiles are
interpolated inside the histogram's buckets (as Prometheus' histogram_quantile does); the
buckets are 1-10 ms apart around the 50 ms target.

    .venv/bin/python benchmarks/freshness.py --rate 2000 --seconds 30
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time

from _harness import (
    add_backend_args,
    histogram_quantile,
    machine,
    metric_sum,
    quiet_collector,
    scrape,
    server_for,
)
from events_gen import batches, make_events
from loadgen import run_open_loop

FRESHNESS = "tailorbot_event_to_feature_seconds"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rate", type=float, default=2000.0, help="events per second")
    ap.add_argument("--batch", type=int, default=10, help="events per request")
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--users", type=int, default=20_000)
    add_backend_args(ap)
    args = ap.parse_args()

    total = int(args.rate * args.seconds)
    bodies = batches(make_events(total, args.users, prefix="fresh"), args.batch)
    with server_for(args) as (url, metrics_url, backends, _pid):
        host, port = url.removeprefix("http://").split(":")
        with quiet_collector():
            load = asyncio.run(
                run_open_loop(
                    host,
                    int(port),
                    "/v1/events",
                    lambda i: bodies[i % len(bodies)],
                    rate=args.rate / args.batch,
                    duration_s=args.seconds,
                )
            )
        deadline = time.monotonic() + 60
        while metric_sum(scrape(metrics_url), "tailorbot_events_applied_total") < total:
            if time.monotonic() > deadline:
                break
            time.sleep(0.05)
        samples = scrape(metrics_url)
    req = load.summary()
    print(
        json.dumps(
            {
                "benchmark": "freshness",
                "machine": machine(),
                "backends": backends,
                "target_events_per_s": args.rate,
                "achieved_events_per_s": round(req["achieved_rps"] * args.batch),
                "batch": args.batch,
                "events_applied": int(metric_sum(samples, "tailorbot_events_applied_total")),
                "freshness_p50_ms": round(histogram_quantile(samples, FRESHNESS, 0.50) * 1000, 2),
                "freshness_p99_ms": round(histogram_quantile(samples, FRESHNESS, 0.99) * 1000, 2),
                "ingest_request_p50_ms": req["p50_ms"],
                "ingest_request_p99_ms": req["p99_ms"],
                "errors": req["errors"],
                "statuses": req["statuses"],
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
