"""`POST /v1/personalize` over real HTTP at a fixed arrival rate (open loop).

Starts `tailorbot serve --workers N` on a data dir with a trained intent model (trained once
into --model-dir and copied), then sends ``--rate`` requests/s for ``--seconds`` seconds with the
open-loop generator of loadgen.py: each request's latency counts from when it was *due*, so
queueing shows (no coordinated omission). Messages are Banking77 test sentences; users are
spread over ``--users`` ids, a share of which already have features.

Beside it, in the same run, a trivial FastAPI route (reference_app.py) takes the same load;
each server's CPU time per request (its processes, from /proc; the stream worker's process,
which applies the decisions' message events, is reported apart) and their ratio are the
figures that hold on a shared machine. The ratio is taken per *answered* request: when the
admission bound sheds some with a cheap 503, the figure per request would flatter the server,
so the report says how many were shed and marks the ratio an upper bound past 1 %.
``--rounds N`` alternates the two N times (medians; the split by thread is the first
round's). The server's CPU per request is also split by thread (event loop, decision
threads, decision recorder, ...; with N processes, summed), read from the server's
``tailorbot_thread_cpu_seconds``. The server's context switches per request are counted
too (every thread's, from /proc): two threads that both want the interpreter lock switch at
each hand-over. The load generator's own CPU per request is reported too (on a small
machine it shares the cores with the servers), with the local
``redis-server``'s when a backend is Redis (and the commands that took most of its time,
from ``INFO commandstats``), and the share of the whole machine that was busy during the
load (from /proc/stat): near 1, latencies measure the queue for the cores.

``--feedback-share F`` adds the load a bot sends beside its decisions: a report on a share F
of them through ``POST /v1/feedback``, about 1 s after each (feedback_load.py). The server's
CPU per request then includes the feedback's handling, which the reference route does not
receive; the report gives the mean size of the server's feedback batches too.

``--pin`` (one server process) measures the issue's set-up, "a server process on one core":
each server's threads on the first usable core, the load generator and the stream worker's
process on the others (Linux ``sched_setaffinity``; other processes of the machine, such as
Redis, may still run there), and reports how busy that core was.

While it sends, the load generator runs ahead of ordinary processes (``SCHED_FIFO``, where
allowed; ``--generator-priority normal`` to compare; ``generator_scheduling`` in the report
says which it got): on a small machine it shares a core with the stream worker's process,
and a due request otherwise waited out that process's time slice, a lateness the latencies
charged to the server (``send_lag_*``).

    .venv/bin/python benchmarks/personalize.py --rate 500 --workers 1
    .venv/bin/python benchmarks/personalize.py --rate 1000 --pin --decision-threads 0
    .venv/bin/python benchmarks/personalize.py --rate 1000 --pin --decision-threads 0 \
        --feedback-share 0.3 --no-reference
    .venv/bin/python benchmarks/personalize.py --rate 1000 --workers 2 \
        --log-url redis://127.0.0.1:6379/0 --store-url redis://127.0.0.1:6379/0
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import orjson
from _harness import (
    GENERATOR_PRIORITIES,
    REPORTED,
    add_backend_args,
    backend_env,
    cleanup_redis,
    count_arg,
    environment,
    generator_priority,
    machine,
    metric_sum,
    quiet_collector,
    scrape,
    server_for,
    share_arg,
    wait_ready,
)
from cpu import (
    busy_share,
    machine_jiffies,
    named_cpu_seconds,
    pin_tree,
    redis_command_usec,
    split_cores,
    top_commands,
    tree_context_switches,
    tree_cpu_seconds,
)
from feedback_load import FeedbackStream, add_share_option, personalize_load
from loadgen import LoadResult

from tailorbot._ports import held_port
from tailorbot.config import Settings
from tailorbot.models import registry
from tailorbot.models.intent import default_dataset, train_intent_model
from tailorbot.models.intent.routed import LanguageRoutedIntentModel

SHED_TOLERANCE = 0.01  # above this share of 503s, the CPU ratio gets a caveat
REDIS_ARGS = ("log_url", "store_url")
FEEDBACK_FIGURES = ("achieved_rps", "statuses", "p50_ms", "p99_ms", "max_ms")
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")


def ensure_model(model_dir: Path) -> None:
    """An intent model in ``model_dir`` of the kind `tailorbot train` saves with the default
    settings: the default model behind the language router, which detects each message's
    language first. A model saved without the router (these benchmarks' own until the
    thirty-fourth session, which left language detection out of every figure) is saved
    again behind it."""
    try:
        saved: registry.SavedModel | None = registry.latest(model_dir, kind="intent")
    except registry.ModelNotFoundError:
        saved = None
    if saved is not None and isinstance(saved.model, LanguageRoutedIntentModel):
        return
    if saved is None:
        trained = train_intent_model(default_dataset("train"))
        model, metadata = trained.model, trained.metadata
    else:  # registry.save writes the kind, version and time of the new version over these
        model, metadata = saved.model, saved.metadata
    settings = Settings()
    routed = LanguageRoutedIntentModel.detecting(
        {settings.intent_language: model}, settings.intent_language, settings.detect_languages
    )
    registry.save(model_dir, routed, metadata, kind="intent")


def request_bodies(users: int, count: int | None = None) -> list[bytes]:
    """``POST /v1/personalize`` bodies: Banking77 test messages from ``users`` users in turn
    (default count: each message three times)."""
    texts = list(default_dataset("test").texts)
    return [
        orjson.dumps(
            {
                "user_id": f"bench-{i % users}",
                "session_id": f"s-{i % users}",
                "message": texts[i % len(texts)],
            }
        )
        for i in range(count if count is not None else len(texts) * 3)
    ]


def reference_server(workers: int) -> contextlib.AbstractContextManager[tuple[str, int]]:
    """The trivial FastAPI route of reference_app.py under uvicorn: (base URL, pid)."""

    @contextlib.contextmanager
    def run() -> Iterator[tuple[str, int]]:
        holder = held_port()  # the port kept until the server listens on it
        port = holder.getsockname()[1]
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "reference_app:app",
                "--app-dir",
                str(Path(__file__).parent),
                "--port",
                str(port),
                "--workers",
                str(workers),
                "--log-level",
                "warning",
            ],  # fmt: skip
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            with holder:  # released once the server listens (or failed to)
                wait_ready(f"http://127.0.0.1:{port}/docs", proc)
            yield f"http://127.0.0.1:{port}", proc.pid
        finally:
            proc.terminate()
            proc.wait(timeout=15)

    return run()


def warm_up(pid: int, args: argparse.Namespace, load: Callable[[], object]) -> None:
    """The warm-up ``load`` (first requests pay for lazy imports and caches); with --pin, the
    server's threads pinned before it and again after: threads started during the warm-up
    inherited their creator's cores."""
    if args.pin:
        pin_tree(pid, {args.server_core}, args.other_cores)
    load()
    if args.pin:
        pin_tree(pid, {args.server_core}, args.other_cores)


def measure(
    url: str, pid: int, bodies: list[bytes], args: argparse.Namespace, feedback_share: float = 0.0
) -> dict:
    """Open-loop load on ``url``: latency figures and the server's CPU per request; with a
    ``feedback_share``, a report on that share of the decisions too (a fresh stream for the
    warm-up and for the measured load: no decision of the one is reported in the other)."""
    host, port = url.removeprefix("http://").split(":")

    def load(seconds: float) -> tuple[LoadResult, LoadResult | None, FeedbackStream | None]:
        return personalize_load(
            host,
            int(port),
            lambda i: bodies[i % len(bodies)],
            rate=args.rate,
            seconds=seconds,
            share=feedback_share,
        )

    warm_up(pid, args, lambda: load(args.warmup_seconds))
    metrics_before = server_samples(url)  # with N processes, /metrics sums them
    redis = local_redis(args)
    redis_before, _ = named_cpu_seconds("redis-server") if redis else (0.0, 0)
    commands_before = redis_command_usec(redis) if redis else {}
    machine_before = machine_jiffies()
    core_before = machine_jiffies(args.server_core) if args.pin else (0, 0)
    before = tree_cpu_seconds(pid)
    switches_before = tree_context_switches(pid)
    own_before = time.process_time()
    # a collection of the generator's heap stalled its sends 0.1 s+; a process sharing its
    # core delayed them by its time slice
    with quiet_collector(), generator_priority(args.generator_priority) as scheduling:
        result, reported, feedback = load(args.seconds)
    own = time.process_time() - own_before
    after = tree_cpu_seconds(pid)
    switches = tree_context_switches(pid)["api"] - switches_before["api"]
    machine_after = machine_jiffies()
    core_after = machine_jiffies(args.server_core) if args.pin else (0, 0)
    redis_after, redis_processes = named_cpu_seconds("redis-server") if redis else (0.0, 0)
    commands_after = redis_command_usec(redis) if redis else {}
    metrics_after = server_samples(url)
    threads_before, threads_after = thread_cpu(metrics_before), thread_cpu(metrics_after)
    batches_before = feedback_batches(metrics_before)
    batches_after = feedback_batches(metrics_after)
    served = max(1, len(result.latencies_s))
    answered = max(1, result.statuses.get(200, 0))
    per_request = {role: (after[role] - before[role]) / served * 1e6 for role in after}
    figures = {
        **result.summary(),
        "shed_share": round(1 - result.statuses.get(200, 0) / served, 3),
        "server_cpu_us_per_request": round(per_request["api"], 1),
        # Every request's CPU over the answered ones: the decision's cost, an upper bound
        # once some are shed (a 503 costs far less than a decision but is counted here).
        "server_cpu_us_per_answered": round(per_request["api"] * served / answered, 1),
        "worker_process_cpu_us_per_request": round(per_request["worker"], 1),
        "server_context_switches_per_request": round(switches / served, 2),
        "load_generator_cpu_us_per_request": round(own / served * 1e6, 1),
        # How much of the whole machine worked meanwhile (every process, the kernel): near
        # 1, the cores were saturated and the latencies measure the queue for them.
        "machine_busy_share": round(busy_share(machine_before, machine_after), 3),
        "generator_scheduling": scheduling,
    }
    if reported is not None and feedback is not None:  # the CPU above counts the feedback too
        figures["feedback"] = {
            **{k: reported.summary()[k] for k in FEEDBACK_FIGURES},
            "repeats": feedback.repeats,
            "without_decision": feedback.without_decision,
        }
        batches = batches_after[1] - batches_before[1]
        if batches:  # the server's feedback batcher: how many feedbacks shared a batch
            applied = batches_after[0] - batches_before[0]
            figures["feedback"]["mean_batch_size"] = round(applied / batches, 2)
        figures["server_cpu_us_per_request_of_either_kind"] = round(
            (after["api"] - before["api"]) / (served + len(reported.latencies_s)) * 1e6, 1
        )
    if args.pin:  # the server's core alone (its threads, and whatever else ran there)
        figures["server_core_busy_share"] = round(busy_share(core_before, core_after), 3)
    if redis:  # every local redis-server: another's on this machine would count too
        figures["redis_server_cpu_us_per_request"] = round(
            (redis_after - redis_before) / served * 1e6, 1
        )
        figures["redis_server_processes"] = redis_processes
        # where that time went, by command (a script's inside its evalsha's)
        figures["redis_usec_per_request_by_command"] = top_commands(
            commands_before, commands_after, served
        )
    if threads_after:
        figures["server_cpu_us_per_request_by_thread"] = {
            name: round((seconds - threads_before.get(name, 0.0)) / served * 1e6, 1)
            for name, seconds in sorted(threads_after.items())
            if seconds - threads_before.get(name, 0.0) >= 0.001
        }
    return figures


def local_redis(args: argparse.Namespace) -> str | None:
    """The URL of a backend that is a Redis on this machine (whose CPU the report then
    reads), or None."""
    for name in REDIS_ARGS:
        url = str(getattr(args, name, "") or "")
        parts = urlsplit(url)
        if parts.scheme in ("redis", "rediss") and parts.hostname in LOCAL_HOSTS:
            return url
    return None


def server_samples(url: str) -> list[tuple[str, str, float]]:
    """The samples of the server's /metrics (none for a server without that route, such as
    the reference route)."""
    try:
        return scrape(url)
    except httpx.HTTPError:
        return []


def thread_cpu(samples: list[tuple[str, str, float]]) -> dict[str, float]:
    """CPU seconds by thread name, from the server's /metrics samples."""
    return {
        thread.group(1): value
        for name, labels, value in samples
        if name == "tailorbot_thread_cpu_seconds"
        and (thread := re.search(r'thread="([^"]*)"', labels))
    }


def feedback_batches(samples: list[tuple[str, str, float]]) -> tuple[float, float]:
    """(feedbacks, batches) the server's feedback batcher applied so far, from its /metrics
    samples (zeros without that histogram)."""
    return (
        metric_sum(samples, "tailorbot_feedback_batch_size_sum"),
        metric_sum(samples, "tailorbot_feedback_batch_size_count"),
    )


def add_load_args(ap: argparse.ArgumentParser, rate: float) -> None:
    """The options of a personalize load (this benchmark's and personalize_tail.py's): its
    rate (default ``rate``), length, warm-up, users, model, and the feedback beside it (the
    server's CPU per personalize request then includes the feedback's)."""
    ap.add_argument("--rate", type=float, default=rate)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--warmup-seconds", type=float, default=3.0)
    ap.add_argument("--users", type=int, default=5000)
    ap.add_argument("--model-dir", default="/tmp/tailorbot-bench-model")
    ap.add_argument(
        "--generator-priority",
        choices=GENERATOR_PRIORITIES,
        default="realtime",
        help="the load generator's scheduling while it sends (_harness.generator_priority; "
        "realtime: SCHED_FIFO where allowed, so its lateness stays out of the latencies)",
    )
    add_share_option(ap)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    add_load_args(ap, rate=500.0)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument(
        "--rounds", type=int, default=1, help="alternating reference/tailorbot rounds (median)"
    )
    ap.add_argument("--no-reference", action="store_true", help="skip the trivial FastAPI route")
    ap.add_argument(
        "--pin",
        action="store_true",
        help="the server on the first usable core; the load generator and the stream worker "
        "on the others",
    )
    ap.add_argument(
        "--history",
        type=count_arg,
        default=0,
        help="decisions made before the server starts (in-process, on the backends of the "
        "run: decision_profile.prepare_state), their message events and feedback applied and "
        "a CF model trained on them, so the users come with history, as on a server that has "
        "run a while (default 0: a fresh data dir; the in-process benchmarks use 20,000). "
        "Embedded backends are prepared once and copied for each round; Redis ones are "
        "prepared again for each round, under the round's own key prefix",
    )
    ap.add_argument(
        "--reported",
        type=share_arg,
        default=REPORTED,
        help=f"with --history, the share of it reported on (default {REPORTED})",
    )
    add_backend_args(ap)
    args = ap.parse_args()
    args.server_core, args.other_cores = split_cores()
    if args.pin and (args.workers != 1 or not args.other_cores):
        ap.error("--pin needs --workers 1 and at least 2 usable cores")
    if args.history and args.log_url == "kafka":
        ap.error("--history prepares embedded and Redis backends only (not --log-url kafka)")
    if args.pin:
        os.sched_setaffinity(0, args.other_cores)

    ensure_model(Path(args.model_dir))
    bodies = request_bodies(args.users)
    rounds: dict[str, list[dict]] = {"reference": [], "tailorbot": []}
    backends = ""
    with server_data(args) as prepared:
        for _ in range(args.rounds):
            if not args.no_reference:
                with reference_server(args.workers) as (url, pid):
                    rounds["reference"].append(measure(url, pid, bodies, args))
            with (
                round_state(args, prepared) as (data_dir, env),
                server_for(args, args.workers, data_dir, env) as served,
            ):
                url, _, backends, pid = served
                rounds["tailorbot"].append(measure(url, pid, bodies, args, args.feedback_share))
    report: dict = {
        "benchmark": "personalize",
        "machine": machine(),
        "server_workers": args.workers,
        "backends": backends,
        "history": f"{args.history:,} decisions, {args.reported:.0%} reported on, a CF model"
        if args.history
        else "none (a fresh data dir)",
        "seconds": args.seconds,
        "rounds": args.rounds,
        "pinned": f"server on core {args.server_core}, load generator and stream worker on "
        f"{sorted(args.other_cores)}"
        if args.pin
        else "no",
    }
    for name, results in rounds.items():
        if results:
            report[name] = _median_round(results)
    if rounds["reference"]:
        ref = report["reference"]["server_cpu_us_per_answered"]
        own = report["tailorbot"]["server_cpu_us_per_answered"]
        report["cpu_ratio_to_reference"] = round(own / ref, 2)
        notes = []
        if args.feedback_share:
            notes.append(
                "tailorbot's CPU per request includes handling the feedback, which the "
                "reference route does not receive"
            )
        shed = report["tailorbot"]["shed_share"]
        if shed > SHED_TOLERANCE:
            # Neither per-request figure is the decision's cost then: cheap 503s lower the
            # one, and their CPU counted against the answers raises the other.
            notes.append(
                f"{shed:.0%} of tailorbot's requests were shed: the ratio is an upper bound; "
                "measure at a rate the server answers in full"
            )
        if notes:
            report["cpu_ratio_note"] = "; ".join(notes)
    print(json.dumps(report, indent=2))


@contextlib.contextmanager
def server_data(args: argparse.Namespace) -> Iterator[Path]:
    """What each round's server starts from, copied: the models, and with ``--history`` on
    embedded backends the users' state (:func:`prepare`; on Redis, :func:`round_state`
    prepares it for each round)."""
    with tempfile.TemporaryDirectory(prefix="tb-bench-state-") as tmp:
        data = Path(tmp) / "data"
        if args.history and not on_redis(args):
            prepare(args, data)
        else:
            shutil.copytree(Path(args.model_dir) / "models", data / "models")
        yield data


@contextlib.contextmanager
def round_state(
    args: argparse.Namespace, prepared: Path
) -> Iterator[tuple[str, tuple[dict[str, str], str] | None]]:
    """One round's data dir, a copy of ``prepared``, and the backends' environment made for
    it (None: the server makes its own). With ``--history`` on Redis, the users' state is
    prepared here, under the round's own key prefix, which the round's server then uses:
    every round starts from the same state, as the copies of embedded backends do."""
    with tempfile.TemporaryDirectory(prefix="tb-bench-pers-") as data_dir:
        if not (args.history and on_redis(args)):
            shutil.copytree(prepared, data_dir, dirs_exist_ok=True)
            yield data_dir, None
            return
        env, label = backend_env(args)
        try:
            with environment(env):
                prepare(args, Path(data_dir) / "data")
        except BaseException:
            cleanup_redis(env)  # server_for cleans up after a round that starts
            raise
        yield str(Path(data_dir) / "data"), (env, label)


def prepare(args: argparse.Namespace, data: Path) -> None:
    """The users' state of ``--history`` in ``data`` (decision_profile.prepare_state), on
    the backends the environment names."""
    from decision_profile import prepare_state  # it imports this module

    history = request_bodies(args.users, args.history)
    prepare_state(data, Path(args.model_dir), history, args.reported)


def on_redis(args: argparse.Namespace) -> bool:
    return any(
        (url or "").startswith(("redis://", "rediss://")) for url in (args.log_url, args.store_url)
    )


def _median_round(results: list[dict]) -> dict:
    """Per figure, the median over the rounds (statuses from the first round); each round's
    p99 too, since a median of three hides how far they were apart."""
    out = dict(results[0])
    for key, value in results[0].items():
        if isinstance(value, int | float):
            out[key] = statistics.median(r[key] for r in results)
    out["p99_ms_each_round"] = [r["p99_ms"] for r in results]
    if "feedback" in out:  # the feedback's figures are the first round's, with each p99
        out["feedback"] = {
            **out["feedback"],
            "p99_ms_each_round": [r["feedback"]["p99_ms"] for r in results],
        }
    return out


if __name__ == "__main__":
    main()
