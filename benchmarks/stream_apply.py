"""Stream-processor throughput: events applied per second, with and without the backends.

* ``apply``: decode + group by user + ``apply_outcome`` on in-memory states (the pure
  feature-state cost; no log, no store).
* ``worker``: a real ``StreamWorker`` draining a pre-filled SQLite log into a SQLite store
  (poll, decode, features.get_many / erasure_watermarks / profiles.get_many, apply, put_many,
  commit);
  ``--state-cache 0`` turns its state cache off (docs/features.md, "The worker"); garbage
  collection is handled as in a ``tailorbot worker`` process (``--gc thread``: as in the
  worker thread of a server, where it is left alone).

A shared machine makes wall-clock rates noisy; the CPU-time rate (this process's CPU seconds,
SQLite included) is the steadier figure.

Events come from ``events_gen.make_events`` with timestamps spread over ``--days`` days in
arrival order (plus a little jitter, so some arrive out of order), as encoded in the log.

    .venv/bin/python benchmarks/stream_apply.py --events 200000 --users 5000
    .venv/bin/python benchmarks/stream_apply.py --mode worker --users 20000 --repeat 3 --profile
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import pstats
import random
import tempfile
import time
from datetime import UTC, datetime
from typing import Any

import orjson
from _harness import machine, timed
from events_gen import make_events

from tailorbot.config import Settings
from tailorbot.features.params import FeatureParams
from tailorbot.features.state import apply_outcome, new_state


def encoded_events(
    n: int, users: int, days: float, session_events: int = 6, seed: int = 11
) -> list[tuple[str, bytes]]:
    """``make_events`` content, re-timed over ``days`` days up to now (each event up to a
    minute early, so some arrive out of order) and re-sessioned: a user's session changes
    after about ``session_events`` events."""
    rng = random.Random(seed)
    end = time.time()
    start = end - days * 86400.0
    sessions: dict[str, int] = {}
    out = []
    for i, ev in enumerate(make_events(n, users, seed=seed, prefix="apply")):
        ts = start + (end - start) * i / n - rng.random() * 60.0
        ev["timestamp"] = datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")
        ev["ingested_at"] = ts
        user = ev["user_id"]
        if user not in sessions or rng.random() < 1 / session_events:
            sessions[user] = i
        ev["session_id"] = f"{user}-{sessions[user]}"
        out.append((user, orjson.dumps(ev)))
    return out


def bench_apply(items: list[tuple[str, bytes]], batch: int) -> float:
    params = FeatureParams.of(Settings())
    states: dict[str, dict] = {}
    started = time.perf_counter()
    for lo in range(0, len(items), batch):
        by_user: dict[str, list] = {}
        for _, value in items[lo : lo + batch]:
            ev = orjson.loads(value)
            ts = datetime.fromisoformat(ev["timestamp"]).timestamp()
            by_user.setdefault(ev["user_id"], []).append((ev, ts))
        for user, evs in by_user.items():
            state = states.get(user)
            if state is None:
                state = states[user] = new_state()
            for ev, ts in evs:
                apply_outcome(state, ev, params, ts)
    return time.perf_counter() - started


def bench_worker(
    items: list[tuple[str, bytes]],
    batch: int,
    partitions: int,
    state_cache: int | None = None,
    phases: dict[str, float] | None = None,
    profiler: cProfile.Profile | None = None,
    pause_gc: bool = True,
) -> tuple[float, float]:
    """(wall, CPU) seconds to drain ``items`` from a SQLite log into a SQLite store (filling
    the log is not counted). ``state_cache``: the worker's state_cache_size (None: its
    default; 0: off). ``phases`` (if given) gets the time spent in each step of the batches;
    ``profiler`` runs during the drain only. ``pause_gc``: as in `tailorbot worker` (the
    default deployment); False: as the worker thread of a server process."""
    from tailorbot.log import open_log
    from tailorbot.store import open_stores
    from tailorbot.stream.worker import StreamWorker

    with tempfile.TemporaryDirectory(prefix="tb-stream-") as tmp:
        settings = Settings(data_dir=tmp, worker_batch=batch, partitions=partitions)
        log = open_log(settings.resolved_log_url(), settings.partitions)
        stores = open_stores(settings.resolved_store_url())
        for lo in range(0, len(items), 5000):
            log.append(items[lo : lo + 5000])
        extra: dict[str, Any] = {} if state_cache is None else {"state_cache_size": state_cache}
        worker = StreamWorker(log, stores, settings, pause_gc=pause_gc, **extra)
        if phases is not None:
            _time_phases(worker, phases)
        if profiler is not None:
            profiler.enable()
        cpu, started = time.process_time(), time.perf_counter()
        handled = 0
        while handled < len(items):
            handled += worker.run_once()
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
        if profiler is not None:
            profiler.disable()
        worker.close()
        log.close()
        stores.close()
    gc.unfreeze()  # what the worker's batches froze (pause_gc), before the next round
    return elapsed, cpu


# The steps of a worker batch, timed by wrapping the objects' methods (label, owner, method).
PHASES = (
    ("log poll", "consumer", "poll"),
    ("decode", "worker_module", "decode_records"),
    ("store: read records", "features", "get_many"),
    ("store: erasures", "features", "erasures"),
    ("store: read profiles", "profiles", "get_many"),
    ("apply events (state)", "worker", "_apply_user"),
    ("  of which: user view for stats", "stats", "view_before"),
    ("  of which: stats deltas", "stats", "add"),
    ("store: write records and counters", "features", "put_many"),
    ("log: committed offsets (cache check)", "log", "committed"),
    ("log commit", "consumer", "commit"),
)


def _time_phases(worker: Any, phases: dict[str, float]) -> None:
    phases.update(dict.fromkeys((label for label, _, _ in PHASES), 0.0))
    from tailorbot.stream import worker as worker_module

    owners = {
        "worker": worker,
        "worker_module": worker_module,
        "features": worker.stores.features,
        "profiles": worker.stores.profiles,
        "log": worker.log,
        "consumer": worker._join(),
        "stats": worker._article_stats,
    }
    for label, owner, name in PHASES:
        target = owners[owner]
        setattr(target, name, timed(getattr(target, name), label, phases))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--mode", choices=("apply", "worker", "both"), default="both")
    ap.add_argument("--events", type=int, default=100_000)
    ap.add_argument("--users", type=int, default=5_000)
    ap.add_argument("--days", type=float, default=30.0)
    ap.add_argument("--session-events", type=int, default=6, help="mean events per session")
    ap.add_argument("--batch", type=int, default=2000, help="records per poll (worker_batch)")
    ap.add_argument("--partitions", type=int, default=8)
    ap.add_argument(
        "--state-cache",
        type=int,
        default=None,
        help="the worker's state_cache_size (default: its default; 0 turns the cache off)",
    )
    ap.add_argument(
        "--gc",
        choices=("process", "thread"),
        default="process",
        help="garbage collection as in a worker process of its own (default: paused during "
        "batches, survivors frozen) or as in the worker thread of a server (left alone)",
    )
    ap.add_argument("--repeat", type=int, default=1, help="report the best of this many runs")
    ap.add_argument("--profile", action="store_true", help="where the time goes (cProfile)")
    args = ap.parse_args()

    items = encoded_events(args.events, args.users, args.days, args.session_events)
    print(
        f"machine: {machine()}; {args.events} events, {args.users} users, batch {args.batch}, "
        f"garbage collection as in a worker {args.gc}"
    )
    modes = ("apply", "worker") if args.mode == "both" else (args.mode,)
    for mode in modes:
        best_wall = best_cpu = float("inf")
        for _ in range(args.repeat):
            if mode == "apply":
                cpu = time.process_time()
                wall = bench_apply(items, args.batch)
                cpu = time.process_time() - cpu
            else:
                wall, cpu = bench_worker(
                    items,
                    args.batch,
                    args.partitions,
                    args.state_cache,
                    pause_gc=args.gc == "process",
                )
            best_cpu = min(best_cpu, cpu)
            best_wall = min(best_wall, wall)
        print(
            f"{mode:>6}: {args.events / best_wall:,.0f} events/s wall ({best_wall:.2f} s), "
            f"{args.events / best_cpu:,.0f} events per CPU-second ({best_cpu:.2f} s)"
        )
        if args.profile:
            profiler = cProfile.Profile()
            phases: dict[str, float] = {}
            if mode == "apply":
                profiler.enable()
                elapsed = bench_apply(items, args.batch)
                profiler.disable()
            else:
                elapsed, _ = bench_worker(
                    items,
                    args.batch,
                    args.partitions,
                    args.state_cache,
                    phases,
                    profiler,
                    pause_gc=args.gc == "process",
                )
            print(f"  profiled run: {elapsed:.2f} s wall (slower: cProfile is on)")
            for label, spent in phases.items():  # in PHASES order ("of which" nests)
                print(f"    {label:<36} {spent:6.2f} s  {spent / elapsed:6.1%}")
            pstats.Stats(profiler).sort_stats("tottime").print_stats(12)


if __name__ == "__main__":
    main()
