"""Where the tail of `POST /v1/personalize` comes from: one server process on one core, each
request's timeline.

personalize.py reports latency percentiles and CPU; this benchmark keeps every request's
due time, how late the load generator sent it, its latency, and the time the decision itself
took inside the server (the answer's ``timings_ms.total``), then splits the tail:

* ``latency``: from the due time (what a client sees; personalize.py's figure);
* ``from_send``: from when the generator actually sent it (its own lateness left out);
* ``decision``: the decision's own time in the server, without HTTP or queueing;
* ``on_time``: the latency of the requests sent within ``--on-time-ms`` of their due time;
* ``generator_stalls``: sends later than ``--stall-ms`` (the generator descheduled; on a
  virtual machine the whole guest is, server included), and the requests due during them
  and the ``--drain-ms`` after (``p99_outside_stalls_ms``);
* ``slow_periods_ms``: the strongest periods in the arrival times of the slow requests
  (over ``--slow-ms``, sent on time), from a Fourier transform of the slow/not-slow series:
  a background task that takes the core every N ms shows as a period of N ms.

``--feedback-share F`` adds a report on a share F of the decisions through ``POST
/v1/feedback`` (feedback_load.py), as personalize.py does: the decisions' own time then
shows what feedback on the same core does to them.

The server runs as under ``personalize.py --pin``: its threads on the first usable core,
the load generator and the stream worker's process on the others, decisions on the event
loop (``--decision-threads 0``) unless told otherwise.

    .venv/bin/python benchmarks/personalize_tail.py --rate 1000 --seconds 20 --rounds 3
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import orjson
from _harness import add_backend_args, generator_priority, machine, quiet_collector, server_for
from cpu import pin_one_core
from feedback_load import personalize_load
from loadgen import LoadResult, percentile_ms
from personalize import add_load_args, ensure_model, request_bodies, warm_up

NAN = float("nan")


def decision_seconds(status: int, body: bytes) -> float:
    """The decision's own time in the server, from a 200 answer (NaN otherwise)."""
    try:
        return float(orjson.loads(body)["timings_ms"]["total"]) / 1000 if status == 200 else NAN
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):  # not an answer
        return NAN


def load(
    url: str, bodies: list[bytes], rate: float, seconds: float, feedback_share: float = 0.0
) -> tuple[LoadResult, LoadResult | None]:
    """The personalize load's result and, with a ``feedback_share``, the feedback's beside
    it (feedback_load.py)."""
    host, port = url.removeprefix("http://").split(":")
    answered, reported, _ = personalize_load(
        host,
        int(port),
        lambda i: bodies[i % len(bodies)],
        rate=rate,
        seconds=seconds,
        share=feedback_share,
        read_answer=decision_seconds,
    )
    return answered, reported


def percentiles(values: np.ndarray) -> dict[str, float]:
    figures = {f"p{q}_ms": percentile_ms(values, q) for q in (50, 90, 99)}
    return figures | {"max_ms": percentile_ms(values, 100)}


def strongest_periods(due: np.ndarray, slow: np.ndarray, rate: float, n: int = 3) -> list:
    """The ``n`` periods (ms) with the most power in the slow/not-slow series, sampled at
    the arrival rate, with their share of the power."""
    order = np.argsort(due)
    series = slow[order].astype(float)
    series -= series.mean()
    power = np.abs(np.fft.rfft(series)) ** 2
    freqs = np.fft.rfftfreq(len(series), d=1 / rate)
    total = power[1:].sum()
    if total == 0:
        return []
    best = np.argsort(power[1:])[::-1][:n] + 1
    return [[round(1000 / freqs[i], 1), round(float(power[i] / total), 4)] for i in best]


def analyse(result: LoadResult, args: argparse.Namespace) -> dict[str, Any]:
    timeline = np.array(result.timeline)
    due, lag, latency = timeline.T
    decision = np.array(result.answers, dtype=float)
    decision = decision[~np.isnan(decision)]
    total = latency  # from the due time (from the start for one started early)
    from_send = latency - lag
    on_time = lag <= args.on_time_ms / 1000
    late = lag > args.stall_ms / 1000
    # A stall: late sends whose due times follow each other within the drain time. The
    # requests due from its first late one until its lateness and the drain time after.
    near_stall = np.zeros(len(due), dtype=bool)
    episodes, last = 0, -np.inf
    for moment, behind in zip(due[late], lag[late], strict=True):
        episodes += moment - last > args.drain_ms / 1000
        last = moment
        near_stall |= (due >= moment) & (due <= moment + behind + args.drain_ms / 1000)
    slow = (total > args.slow_ms / 1000) & on_time
    return {
        "answered": len(decision),
        "latency": percentiles(total),
        "from_send": percentiles(from_send),
        "decision": percentiles(decision),
        "send_lag": percentiles(lag),
        "on_time": {"share": round(float(on_time.mean()), 4), **percentiles(total[on_time])},
        "generator_stalls": {
            "episodes": int(episodes),
            "late_sends": int(late.sum()),
            "longest_ms": percentile_ms(lag, 100),
            "requests_near_share": round(float(near_stall.mean()), 4),
            "p99_outside_stalls_ms": percentile_ms(total[~near_stall], 99),
        },
        "slow_share": round(float(slow.mean()), 4),
        "slow_periods_ms": strongest_periods(due, slow, args.rate),
    }


def one_round(args: argparse.Namespace, bodies: list[bytes]) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="tb-bench-tail-") as data_dir:
        shutil.copytree(Path(args.model_dir) / "models", Path(data_dir) / "models")
        with server_for(args, data_dir=data_dir) as (url, _, backends, pid):
            share = args.feedback_share
            warm_up(pid, args, lambda: load(url, bodies, args.rate, args.warmup_seconds, share))
            # a collection of the generator's heap stalls its sends; a process sharing its
            # core delays them by its time slice
            with quiet_collector(), generator_priority(args.generator_priority) as scheduling:
                result, reported = load(url, bodies, args.rate, args.seconds, share)
            figures = {**analyse(result, args), "generator_scheduling": scheduling}
            if reported is not None:
                summary = reported.summary()
                figures["feedback"] = {k: summary[k] for k in ("statuses", "p50_ms", "p99_ms")}
    return {"backends": backends, **figures}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_load_args(ap, rate=1000.0)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--slow-ms", type=float, default=3.0)
    ap.add_argument("--on-time-ms", type=float, default=1.0)
    ap.add_argument("--stall-ms", type=float, default=20.0)
    ap.add_argument("--drain-ms", type=float, default=300.0)
    add_backend_args(ap)
    ap.set_defaults(decision_threads=0)
    args = ap.parse_args()
    pin_one_core(ap, args)  # the server on one core, as personalize.py --pin
    ensure_model(Path(args.model_dir))
    bodies = request_bodies(args.users)
    rounds = [one_round(args, bodies) for _ in range(args.rounds)]
    report = {
        "benchmark": "personalize_tail",
        "machine": machine(),
        "rate": args.rate,
        "seconds": args.seconds,
        "pinned": f"server on core {args.server_core}, load generator and stream worker on "
        f"{sorted(args.other_cores)}",
        "backends": rounds[0]["backends"],
        "rounds": [{k: v for k, v in r.items() if k != "backends"} for r in rounds],
    }
    if args.rounds > 1:
        report["median_latency_p99_ms"] = statistics.median(r["latency"]["p99_ms"] for r in rounds)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    sys.exit(main())
