"""What a server process's once-a-second refresh of the shared statistics costs it.

Every server process re-reads, off the request path, the shared article counters (the
recommenders' collaborative statistics) and the response-variant bandit's statistics (each
policy's ``sync``), once a second (``TAILORBOT_BANDIT_SYNC_S``). That thread holds the
interpreter lock while it parses and rebuilds, so its CPU is taken from the requests.

Builds the real app on embedded backends with users who have history and feedback
(``--history``, ``--reported``: decision_profile.give_history, which also trains the item-kNN
model), then times ``--ticks`` calls of each refresher, as the refresh thread makes them:

* ``unchanged``: nothing written between two ticks (a quiet minute, or a server whose
  traffic gives no feedback);
* ``changed``: before each tick, each namespace the refresher reads gets a write (an
  addition to one vector or counter, as a feedback's), outside the timed call.

Reports the thread's CPU µs per tick of each refresher (median of ``--rounds``), and how
many counters and vectors the store holds. On the embedded store by default;
``--store-url redis://...`` for Redis (under a fresh key prefix, deleted after; the log
stays embedded).

    .venv/bin/python benchmarks/refresh_cost.py
    .venv/bin/python benchmarks/refresh_cost.py --history 20000 --reported 0.3 --ticks 100
    .venv/bin/python benchmarks/refresh_cost.py --store-url redis://127.0.0.1:6379/0
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _harness import add_history_arg, backend_env, cleanup_redis, count_arg
from decision_profile import started_app
from personalize import ensure_model, request_bodies

from tailorbot.models.recommend.collaborative import NAMESPACES
from tailorbot.services.decisions.policy import NS_SEGMENT_VARIANT


def touch(store: Any, namespaces: tuple[str, ...]) -> None:
    """A write to each of ``namespaces``, as a feedback's: an addition to one of its vectors
    where it holds vectors (zeros: the figures stay as they were, the read is the same), else
    to one of its counters (a new one where it holds none)."""
    for namespace in namespaces:
        vectors = store.vectors(namespace)
        if vectors:
            name, held = next(iter(vectors.items()))
            store.add_vectors(namespace, {name: [0.0] * len(held)})
        else:
            key = next(iter(store.counters(namespace)), "refresh-cost")
            store.increment(namespace, {key: 1.0})


def per_tick(refresh: Callable[[], None], ticks: int, before: Callable[[], None]) -> float:
    """Thread CPU µs per call of ``refresh``, ``before`` run (not timed) ahead of each."""
    spent = 0.0
    for _ in range(ticks):
        before()
        start = time.thread_time()
        refresh()
        spent += time.thread_time() - start
    return spent / ticks * 1e6


async def run(args: argparse.Namespace) -> dict[str, Any]:
    ensure_model(Path(args.model_dir))
    history = request_bodies(args.users, args.history)
    async with started_app(Path(args.model_dir), history=history, reported=args.reported) as (
        _,
        decider,
    ):
        live = decider._live
        store = live.current.recommenders.store
        policies = [live.current.policy]
        if live.current.control is not None:
            policies.append(live.current.control)
        refreshers: dict[str, tuple[Callable[[], None], tuple[str, ...]]] = {
            "articles": (live._refresh_articles, NAMESPACES),
            **{
                f"bandit ({policy.namespace})": (
                    policy.sync,
                    (policy.namespace, NS_SEGMENT_VARIANT),
                )
                for policy in policies
            },
        }
        figures: dict[str, Any] = {
            "counters": sum(len(store.counters(ns)) for ns in NAMESPACES),
            "bandit vectors": {p.namespace: len(store.vectors(p.namespace)) for p in policies},
        }
        for name, (refresh, namespaces) in refreshers.items():
            refresh()  # warm: the first read after the history's writes
            for case, before in (
                ("unchanged", lambda: None),
                ("changed", lambda ns=namespaces: touch(store, ns)),  # type: ignore[misc]
            ):
                rounds = [per_tick(refresh, args.ticks, before) for _ in range(args.rounds)]
                figures[f"{name}, {case}: CPU µs a tick"] = round(statistics.median(rounds), 1)
        return figures


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--users", type=count_arg, default=5000)
    ap.add_argument("--ticks", type=count_arg, default=50)
    ap.add_argument("--rounds", type=count_arg, default=3)
    ap.add_argument("--model-dir", default="/tmp/tailorbot-bench-model")
    ap.add_argument("--store-url", help="e.g. redis://127.0.0.1:6379/0 (default: embedded)")
    add_history_arg(ap)
    args = ap.parse_args(argv)
    if args.ticks < 1 or args.rounds < 1:
        ap.error("--ticks and --rounds must be at least 1")
    env, label = backend_env(args)
    os.environ.update(env)  # the app's settings read them
    try:
        figures = {"store": label, **asyncio.run(run(args))}
    finally:
        cleanup_redis(env)
    print(json.dumps(figures, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
