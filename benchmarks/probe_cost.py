"""The CPU that probes and scrapes cost a server: ``/healthz``, ``/readyz`` and ``/metrics``.

A load balancer asks ``/readyz`` every few seconds and Prometheus scrapes ``/metrics``, on
every server, all day: what each costs is CPU the decisions do not get. Starts `tailorbot
serve --workers N` (the stream worker in its own process, as by default), sends each route
``--requests`` GETs one after another (a new connection each, as probes come), and reports
the server processes' CPU per request (from /proc, whose clock ticks are 10 ms: use a few
hundred requests), with its ratio to ``/healthz`` (which touches no backend) measured in the
same run. The worker process's CPU is reported apart; both less their background
(their CPU per second over an idle pause before each round).
With N > 1 a ``/metrics`` answer is the sum of the N processes (docs/deploy.md).

The data dir holds the Banking77 model of personalize.py (trained once into --model-dir):
a server without a model is not ready, and its /readyz a 503.

    .venv/bin/python benchmarks/probe_cost.py --workers 2
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx
from _harness import machine, tailorbot_server
from cpu import tree_cpu_seconds
from personalize import ensure_model

ROUTES = ("/healthz", "/readyz", "/metrics")
IDLE_S = 5.0


def cpu_over(pid: int, work: Callable[[], None]) -> dict[str, float]:
    """CPU seconds of the API processes and of the worker process while ``work`` runs, and
    the seconds it took."""
    before, started = tree_cpu_seconds(pid), time.perf_counter()
    work()
    after, seconds = tree_cpu_seconds(pid), time.perf_counter() - started
    return {**{role: after[role] - before[role] for role in after}, "seconds": seconds}


def probes(client: httpx.Client, url: str, route: str, requests: int) -> Callable[[], None]:
    """``requests`` GETs of ``route``, one after another, each answered 200."""

    def send() -> None:
        for _ in range(requests):
            status = client.get(url + route).status_code
            if status != 200:
                raise SystemExit(f"{route} answered {status}")

    return send


def idle() -> None:
    time.sleep(IDLE_S)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--requests", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=3, help="alternating rounds (medians)")
    ap.add_argument("--model-dir", default="/tmp/tailorbot-bench-model")
    args = ap.parse_args()
    ensure_model(Path(args.model_dir))
    rounds: dict[str, list[dict[str, float]]] = {route: [] for route in ROUTES}
    quiet: list[dict[str, float]] = []
    # one client, a new connection per request (as probes come): a new httpx client per
    # request would cost this process a TLS context each, and slow the rounds down
    client = httpx.Client(timeout=30, headers={"Connection": "close"})
    with tempfile.TemporaryDirectory(prefix="tb-bench-probe-") as data_dir:
        shutil.copytree(Path(args.model_dir) / "models", Path(data_dir) / "models")
        with tailorbot_server(workers=args.workers, data_dir=data_dir) as (url, _, pid):
            for route in ROUTES:  # warm-up: lazy imports, first connections
                probes(client, url, route, 5)()
            for _ in range(args.rounds):
                quiet.append(cpu_over(pid, idle))
                for route in ROUTES:
                    work = probes(client, url, route, args.requests)
                    rounds[route].append(cpu_over(pid, work))
    report: dict = {
        "benchmark": "probe_cost",
        "machine": machine(),
        "server_workers": args.workers,
        "requests_per_round": args.requests,
        "rounds": args.rounds,
    }
    # Both sides have threads that work while idle (the worker polls the log, the servers
    # refresh their models): their CPU per second idle is left out of each round's.
    background = {
        role: statistics.median(r[role] / r["seconds"] for r in quiet) for role in ("api", "worker")
    }
    per_request = {
        route: {
            role: statistics.median(
                max(0.0, r[role] - background[role] * r["seconds"]) / args.requests * 1e6
                for r in results
            )
            for role in ("api", "worker")
        }
        for route, results in rounds.items()
    }
    report["background_cpu_share"] = {role: round(v, 4) for role, v in background.items()}
    # /proc counts CPU in clock ticks: each reading of a process is off by up to one
    tick_us = 1e6 / os.sysconf("SC_CLK_TCK")
    report["clock_tick_us_per_request"] = round(tick_us / args.requests, 1)
    for route, figures in per_request.items():
        report[route] = {
            "api_cpu_us_per_request": round(figures["api"], 1),
            "worker_process_cpu_us_per_request": round(figures["worker"], 1),
            "ratio_to_healthz": round(figures["api"] / max(per_request["/healthz"]["api"], 1.0), 2),
        }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
