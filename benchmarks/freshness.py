"""Event-to-feature freshness at a fixed arrival rate (open loop).

Sends ``--rate`` events/s to one `tailorbot serve` process (in batches of ``--batch`` every
``batch/rate`` seconds, on schedule whatever the server does) and reads the server's
``tailorbot_event_to_feature_seconds`` histogram: for each event, the wall time from its
acceptance at the door to the write of the user's updated features. Quantiles are
interpolated inside the histogram's buckets (as Prometheus' histogram_quantile does); the
buckets are 1-10 ms apart around the 50 ms target. The load starts once the stream worker
runs, and the first ``--warmup-seconds`` of it (caches, first batches) are left out of the
figures (the histogram is read before and after the measured part).

    .venv/bin/python benchmarks/freshness.py --rate 2000 --seconds 30
"""

from __future__ import annotations

import argparse
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
from loadgen import LoadResult, run_load, run_open_loop

FRESHNESS = "tailorbot_event_to_feature_seconds"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rate", type=float, default=2000.0, help="events per second")
    ap.add_argument("--batch", type=int, default=10, help="events per request")
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--users", type=int, default=20_000)
    ap.add_argument("--warmup-seconds", type=float, default=2.0)
    add_backend_args(ap)
    args = ap.parse_args()

    total = int(args.rate * args.seconds)
    warmup = int(args.rate * args.warmup_seconds)
    bodies = batches(make_events(warmup + total, args.users, prefix="fresh"), args.batch)
    with server_for(args) as (url, metrics_url, backends, _pid):
        host, port = url.removeprefix("http://").split(":")

        def send(first: int, seconds: float) -> LoadResult:
            with quiet_collector():
                return run_load(
                    run_open_loop(
                        host,
                        int(port),
                        "/v1/events",
                        lambda i: bodies[(first + i) % len(bodies)],
                        rate=args.rate / args.batch,
                        duration_s=seconds,
                    )
                )

        send(0, args.warmup_seconds)
        wait_applied(metrics_url, warmup)
        before = scrape(metrics_url)
        load = send(warmup // args.batch, args.seconds)
        wait_applied(metrics_url, warmup + total)
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
                "warmup_seconds": args.warmup_seconds,
                "events_applied": int(
                    metric_sum(samples, "tailorbot_events_applied_total")
                    - metric_sum(before, "tailorbot_events_applied_total")
                ),
                "freshness_p50_ms": _ms(histogram_quantile(samples, FRESHNESS, 0.50, before)),
                "freshness_p99_ms": _ms(histogram_quantile(samples, FRESHNESS, 0.99, before)),
                "freshness_max_bucket_ms": _ms(histogram_quantile(samples, FRESHNESS, 1.0, before)),
                "ingest_request_p50_ms": req["p50_ms"],
                "ingest_request_p99_ms": req["p99_ms"],
                "errors": req["errors"],
                "statuses": req["statuses"],
            },
            indent=2,
        )
    )


def wait_applied(metrics_url: str, count: int, timeout_s: float = 60.0) -> None:
    """Until the worker has applied ``count`` events (or ``timeout_s`` passed: a server that
    refused some, 503 under overload, never gets there)."""
    deadline = time.monotonic() + timeout_s
    while metric_sum(scrape(metrics_url), "tailorbot_events_applied_total") < count:
        if time.monotonic() > deadline:
            return
        time.sleep(0.05)


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 2)


if __name__ == "__main__":
    main()
