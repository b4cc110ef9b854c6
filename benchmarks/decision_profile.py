"""Where a `POST /v1/personalize` spends its CPU, in one process, without the network.

Builds the real app (embedded backends, the Banking77 model of personalize.py, trained once
into --model-dir), then answers ``--requests`` Banking77 test messages from ``--users``
users in two ways:

* the decision alone (``DecisionService.personalize_payload``, what the lean route calls):
  CPU µs per decision, and the median of each stage the answer's ``timings_ms`` report
  (intent, features, recommend, response, record);
* the whole ASGI app (middleware, the lean route, the bounded thread pool, the decision,
  the JSON body), driven by an in-process ASGI client: CPU µs per request;
* with ``--stack-only``, the same app with the decision replaced by one answer made
  beforehand (the issue's "HTTP stack alone", without the network): what the ASGI layers
  and the lean route cost a request;
* with ``--feedback``, ``POST /v1/feedback`` on those decisions, through the app and the
  handler alone: CPU µs per feedback;
* with ``--feedback-batches 1,4,16``, feedback applied in batches of each size, as the
  server's feedback batcher applies them (``DecisionService.feedback_batch``: one log
  append and one store write a batch): CPU µs per feedback, on decisions of their own;
  with a Redis store (``TAILORBOT_STORE_URL=redis://...``), the Redis server's time too
  (``INFO commandstats``: every client's commands count, so give it a Redis of its own).

Beside them, in the same run, the trivial FastAPI route of reference_app.py through the
same ASGI client: the ratio to it is the figure that holds across machines. ``--profile``
prints cProfile's top functions by own time over the decisions; ``--stage-cpu`` the thread
CPU of each stage measured inside the decisions (last: it wraps the stage methods).

The users have history first: ``--history`` decisions whose message events a stream worker
applies before anything is measured (:func:`give_history`; ``--history 0`` for none, as
before the nineteenth session of docs/benchmarks.md).

    .venv/bin/python benchmarks/decision_profile.py --requests 3000
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import io
import pstats
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import orjson
from _harness import Patches, add_history_arg, timed
from fastapi import FastAPI
from feedback_load import FeedbackStream
from personalize import ensure_model, request_bodies
from reference_app import app as reference_app

from tailorbot.api.app import create_app
from tailorbot.api.deps import load_decider
from tailorbot.config import Settings
from tailorbot.services.decisions import service as service_module
from tailorbot.services.decisions.schemas import FeedbackRequest, PersonalizeRequest

FEEDBACK_WARMUP = 200  # feedback requests answered before counting
DRAIN_EVERY = 100  # requests between waits for the decision recorder to write its queue
HISTORY_FLUSH_EVERY = 1000  # history decisions between waits for the recorder (give_history)
HISTORY_FEEDBACK_BATCH = 16  # feedback reports a batch in give_history, as the server's batcher
STAGES = ("intent", "features", "recommend", "response", "record", "total")
Asgi = Callable[..., Awaitable[None]]


async def call(app: Asgi, path: str, body: bytes) -> tuple[int, bytes]:
    """One request through ``app`` as uvicorn would send it: (status, body)."""
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
        "scheme": "http", "path": path, "raw_path": path.encode(), "root_path": "",
        "query_string": b"", "server": ("127.0.0.1", 8000), "client": ("127.0.0.1", 5000),
        "headers": [(b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode())],
    }  # fmt: skip
    sent = False
    status, chunks = 0, []

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            await asyncio.sleep(3600)
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await app(scope, receive, send)
    return status, b"".join(chunks)


async def cpu_per_request(
    app: Asgi, path: str, payloads: list[bytes], drain: Callable[[], None] = lambda: None
) -> float:
    """CPU µs per request of the whole process (the pool's and the recorder's threads
    included). ``drain`` is called every ``DRAIN_EVERY`` requests: with decisions on the
    event loop this loop never idles, and the recorder's writer (which takes the core in a
    server's idle time) would fall behind until the admission bound answered 503."""
    for body in payloads[:200]:  # warm-up
        await call(app, path, body)
    drain()
    start = time.process_time()
    for i, body in enumerate(payloads, 1):
        status, answer = await call(app, path, body)
        if status != 200:
            raise RuntimeError(f"{path} answered {status}: {answer[:300]!r}")
        if i % DRAIN_EVERY == 0:
            drain()
    drain()
    return (time.process_time() - start) / len(payloads) * 1e6


def decision_alone(decider: Any, payloads: list[bytes]) -> tuple[float, dict[str, float]]:
    requests = [PersonalizeRequest.model_validate_json(b) for b in payloads]
    for request in requests[:200]:
        decider.personalize_payload(request)
    timings: dict[str, list[float]] = {s: [] for s in STAGES}
    start = time.process_time()
    for request in requests:
        answer = decider.personalize_payload(request)
        for stage in STAGES:
            timings[stage].append(answer["timings_ms"].get(stage, 0.0))
    cpu = (time.process_time() - start) / len(requests) * 1e6
    return cpu, {s: statistics.median(v) * 1000 for s, v in timings.items()}


@contextlib.asynccontextmanager
async def started_app(
    model_dir: Path,
    decision_threads: int | None = None,
    history: Sequence[bytes] = (),
    reported: float = 0.0,
) -> AsyncIterator[tuple[FastAPI, Any]]:
    """The real app, started on a fresh data dir holding the model of ``model_dir``
    (embedded backends), and its decision service; with ``history``, its users' features
    too, and feedback on a ``reported`` share of those decisions (:func:`give_history`)."""
    with tempfile.TemporaryDirectory(prefix="tb-profile-") as tmp:
        async with app_on(Path(tmp), model_dir, decision_threads, history, reported) as started:
            yield started


@contextlib.asynccontextmanager
async def app_on(
    data_dir: Path,
    model_dir: Path,
    decision_threads: int | None = None,
    history: Sequence[bytes] = (),
    reported: float = 0.0,
) -> AsyncIterator[tuple[FastAPI, Any]]:
    """:func:`started_app` on ``data_dir`` (empty or missing): what the app leaves there
    (the log, the stores, the models) stays when it has stopped."""
    shutil.copytree(model_dir / "models", data_dir / "models")
    # the stream worker runs in a process of its own under `tailorbot serve`: not here;
    # requests go one at a time, so a feedback's linger would only add idle time, in
    # which the process's other threads tick and count as the request's CPU
    settings = Settings(
        data_dir=data_dir,
        model_poll_s=0,
        run_worker_in_server=False,
        decision_threads=decision_threads,
        feedback_linger_s=0,
        kb_poll_s=0,  # no thread reading the KB's version file every 2 s beside the requests
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        decider = await load_decider(app)
        give_history(app, decider, history, reported)
        yield app, decider


def prepare_state(
    data_dir: Path, model_dir: Path, history: Sequence[bytes], reported: float
) -> None:
    """A data dir (embedded backends) whose users have ``history`` and feedback on a
    ``reported`` share of it (:func:`give_history`), the models included: for a server
    started on a copy of it (personalize.py ``--history``)."""

    async def build() -> None:
        async with app_on(data_dir, model_dir, history=history, reported=reported):
            pass

    asyncio.run(build())


def give_history(
    app: FastAPI, decider: Any, bodies: Sequence[bytes], reported: float = 0.0
) -> None:
    """Decide ``bodies`` and apply the message events they log to the feature store, as
    the stream worker's process does under `tailorbot serve`: the users then have feature
    records. Without them every feature view is built from an empty state, which costs a
    fraction of a view of a user with history (docs/benchmarks.md, nineteenth session).

    With ``reported`` (a share), the bot reports on that share of the decisions as
    feedback_load.py's bots do (a rating, resolved or not, a click on the first article
    for half), through the feedback handler; the worker applies those too (the shared
    article counters, each user's helpful and resolved articles, the bandit's statistics),
    an item-kNN model is trained on the log and saved as ``tailorbot train-recs`` would
    make it current, and the decision service re-reads all of it. Without feedback every
    decision's collaborative evidence, the user's article history and the CF signal are
    empty, which a deployment that has run a while never sees (thirty-fifth session).
    The state then stays as it is: no worker and no refresh runs while the benchmark
    measures."""
    if not bodies:
        return
    stream = FeedbackStream(share=reported) if reported > 0 else None
    for i, body in enumerate(bodies, 1):
        answer = decider.personalize_payload(PersonalizeRequest.model_validate_json(body))
        if stream is not None:
            stream.read_answer(200, orjson.dumps(answer))
        # written as it goes: the recorder's queue is bounded, and under valgrind its
        # writer falls far behind a loop of decisions
        due = i % HISTORY_FLUSH_EVERY == 0 or i == len(bodies)
        if due and not decider.recorder.flush(timeout_s=600):
            raise RuntimeError("the decision recorder did not write the history")
    if stream is not None:
        reports = [FeedbackRequest.model_validate_json(b) for b in stream.drain()]
        for start in range(0, len(reports), HISTORY_FEEDBACK_BATCH):
            applied(decider.feedback_batch(reports[start : start + HISTORY_FEEDBACK_BATCH]))
    runtime = app.state.runtime
    worker = runtime.stream_worker()
    try:
        while worker.run_once():
            pass
    finally:
        worker.close()
    if stream is not None:
        from tailorbot.models.recommend.cf_training import save_cf, train_from_log

        model, metadata = train_from_log(runtime.log, features=runtime.stores.features)
        save_cf(runtime.settings.data_dir, model, metadata)
        decider._live._refresh.run_once()  # the counters, the CF model, the bandit's sync
        # stderr: a counted child's stdout is its dialogue with callgrind (_callgrind.py)
        print(
            f"history: {len(bodies):,} decisions, {len(reports):,} reported on; item-kNN over "
            f"{metadata['users']:,} users, {metadata['articles_with_neighbours']} articles "
            "with neighbours",
            file=sys.stderr,
        )


async def run(args: argparse.Namespace) -> None:
    ensure_model(args.model_dir)
    history = request_bodies(args.users, args.history)
    started = started_app(args.model_dir, args.decision_threads, history, args.reported)
    async with started as (app, decider):
        payloads = request_bodies(args.users, args.requests)

        def drain() -> None:
            if not decider.recorder.flush(timeout_s=60):
                raise RuntimeError("the decision recorder did not write its queue")

        cpu, stages = decision_alone(decider, payloads)
        print(f"decision alone: {cpu:,.0f} µs CPU per decision; stage medians (µs):")
        print("  " + ", ".join(f"{s} {stages[s]:,.0f}" for s in STAGES))
        rounds: list[tuple[float, float]] = []
        for _ in range(args.rounds):
            ours = await cpu_per_request(app, "/v1/personalize", payloads, drain)
            ref = await cpu_per_request(reference_app, "/v1/personalize", payloads)
            rounds.append((ours, ref))
        ours = statistics.median(r[0] for r in rounds)
        ref = statistics.median(r[1] for r in rounds)
        print(
            f"ASGI app: {ours:,.0f} µs CPU per request; trivial FastAPI route "
            f"{ref:,.0f} µs; ratio {ours / ref:.2f} (median of {args.rounds} rounds)"
        )
        if args.stack_only:
            ours, ref = await stack_cpu(app, decider, payloads, args.rounds)
            print(
                f"ASGI app, the decision replaced by a fixed answer: {ours:,.1f} µs CPU per "
                f"request; trivial FastAPI route {ref:,.1f} µs; ratio {ours / ref:.2f} "
                f"(median of {args.rounds} rounds)"
            )
        if args.feedback:
            through_app, alone = await feedback_cpu(app, decider, payloads, drain)
            print(
                f"feedback: {through_app:,.0f} µs CPU per request through the ASGI app, "
                f"{alone:,.0f} the handler alone (DecisionService.feedback)"
            )
        if args.feedback_batches:
            by_size, server = await batch_cpu(app, decider, payloads, drain, args.feedback_batches)
            print(
                "feedback in batches: "
                + ", ".join(f"{n}: {us:,.0f} µs" for n, us in by_size.items())
                + " CPU per feedback"
            )
            if server:
                print(
                    "the Redis server, in commands: "
                    + ", ".join(f"{n}: {us:,.0f} µs" for n, us in server.items())
                    + " per feedback"
                )
        if args.stage_cpu:
            stages = stage_cpu(decider, payloads)
            print("thread CPU per decision, measured inside the decisions (µs):")
            print("  " + ", ".join(f"{s} {v:,.0f}" for s, v in stages.items()))
        if args.profile:
            print(top_functions(decider, payloads, args.profile))


async def stack_cpu(
    app: Asgi, decider: Any, payloads: list[bytes], rounds: int
) -> tuple[float, float]:
    """CPU µs per request of ``app`` with ``decider.personalize_payload`` answering one
    answer made beforehand, and of the trivial route, alternated ``rounds`` times
    (medians): the cost of everything around the decision."""
    fixed = decider.personalize_payload(PersonalizeRequest.model_validate_json(payloads[0]))
    if not decider.recorder.flush(timeout_s=60):
        raise RuntimeError("the decision recorder did not write its queue")
    patches = Patches()
    patches.wrap(decider, "personalize_payload", lambda _: lambda *a, **k: fixed)
    try:
        measured = [
            (
                await cpu_per_request(app, "/v1/personalize", payloads),
                await cpu_per_request(reference_app, "/v1/personalize", payloads),
            )
            for _ in range(rounds)
        ]
    finally:
        patches.undo()
    return statistics.median(m[0] for m in measured), statistics.median(m[1] for m in measured)


async def feedback_cpu(
    app: Asgi, decider: Any, payloads: list[bytes], drain: Callable[[], None]
) -> tuple[float, float]:
    """CPU µs per ``POST /v1/feedback`` (feedback_load.py's reports: a rating, whether it
    resolved, a click for half) through the whole ASGI app, and of the handler alone, each
    on decisions of their own (a decision takes its outcome once), written before."""
    stream = decided(await answers(app, payloads))
    drain()
    reports = [stream.next_body(i) for i in range(len(payloads))]
    warm, rest = reports[:FEEDBACK_WARMUP], reports[FEEDBACK_WARMUP:]
    through_app, alone = rest[: len(rest) // 2], rest[len(rest) // 2 :]
    for body in warm:
        await call(app, "/v1/feedback", body)
    start = time.process_time()
    for body in through_app:
        status, answer = await call(app, "/v1/feedback", body)
        if status != 200:
            raise RuntimeError(f"/v1/feedback answered {status}: {answer[:300]!r}")
    app_cpu = (time.process_time() - start) / len(through_app) * 1e6
    requests = [FeedbackRequest.model_validate_json(body) for body in alone]
    start = time.process_time()
    for request in requests:
        decider.feedback(request)
    return app_cpu, (time.process_time() - start) / len(requests) * 1e6


async def batch_cpu(
    app: Asgi, decider: Any, payloads: list[bytes], drain: Callable[[], None], sizes: list[int]
) -> tuple[dict[int, float], dict[int, float]]:
    """CPU µs per feedback applied in batches of each of ``sizes`` (one share of the reports
    each, after a warm-up, in the order given; every report on a decision of its own), and
    the Redis server's µs per feedback (none: the store is not on Redis)."""
    stream = decided(await answers(app, payloads))
    drain()
    requests = [
        FeedbackRequest.model_validate_json(stream.next_body(i)) for i in range(len(payloads))
    ]
    warm, rest = requests[:FEEDBACK_WARMUP], requests[FEEDBACK_WARMUP:]
    applied(decider.feedback_batch(warm))
    share = len(rest) // len(sizes)
    spent: dict[int, float] = {}
    server: dict[int, float] = {}
    for k, size in enumerate(sizes):
        part = rest[k * share : (k + 1) * share]
        server_start = redis_usec(decider)
        start = time.process_time()
        for i in range(0, len(part), size):
            applied(decider.feedback_batch(part[i : i + size]))
        spent[size] = (time.process_time() - start) / len(part) * 1e6
        server_end = redis_usec(decider)
        if server_start is not None and server_end is not None:
            server[size] = (server_end - server_start) / len(part)
    return spent, server


def redis_usec(decider: Any) -> float | None:
    """The microseconds the store's Redis server spent in commands so far (every client's),
    or None when the store is not on Redis."""
    client = getattr(decider.stores.decisions, "client", None)
    if client is None:
        return None
    return float(sum(stat["usec"] for stat in client.info("commandstats").values()))


def applied(answers: list[Any]) -> None:
    """Fail on an answer that is an error (every report here must be taken)."""
    errors = [a for a in answers if isinstance(a, Exception)]
    if errors:
        raise RuntimeError(f"{len(errors)} feedbacks failed, the first: {errors[0]!r}")


async def answers(app: Asgi, payloads: list[bytes]) -> list[tuple[int, bytes]]:
    return [await call(app, "/v1/personalize", body) for body in payloads]


def decided(answered: list[tuple[int, bytes]]) -> FeedbackStream:
    """A feedback stream holding every decision of ``answered`` (all of them 200: a report
    missing for one would be a cheap repeat, which would flatter the figure)."""
    stream = FeedbackStream(share=1.0)
    for status, body in answered:
        if status != 200:
            raise RuntimeError(f"/v1/personalize answered {status}: {body[:300]!r}")
        stream.read_answer(status, body)
    return stream


def stage_cpu(decider: Any, payloads: list[bytes]) -> dict[str, float]:
    """Thread CPU µs per decision in each stage, measured inside the decisions (a stage's
    code and data are then as cold as the rest of the decision leaves them, unlike in a
    loop of its own): the stage methods are wrapped on the instances, and two functions in
    the service's module, for this run only ("of which": a part of the stage above it)."""
    spent: dict[str, float] = {}
    patches = Patches()

    def measure(owner: Any, name: str, stage: str) -> None:
        spent[stage] = 0.0  # reported in this order
        patches.wrap(owner, name, lambda fn: timed(fn, stage, spent, time.thread_time))

    requests = [PersonalizeRequest.model_validate_json(b) for b in payloads]
    for request in requests[: len(requests) // 4]:  # warm-up, not counted
        decider.personalize_payload(request)
    counted = requests[len(requests) // 4 :]
    try:
        measure(decider.models.intent, "predict_one", "intent")
        measure(decider, "_read_user", "read the user (store + feature view)")
        measure(service_module, "feature_view", "  of which the feature view")
        measure(decider, "_articles", "recommend")
        measure(decider, "_decide", "context, bandit, render, record built")
        measure(service_module, "decision_context", "  of which the context")
        measure(decider, "_variant", "  of which the bandit")
        measure(decider.models.composer, "render", "  of which rendering")
        measure(decider, "_record", "queue for the recorder")
        measure(decider, "personalize_payload", "total")
        for request in counted:
            decider.personalize_payload(request)
    finally:  # unwrapped again: a later --profile measures the code, not the wrappers
        patches.undo()
    out = {stage: seconds / len(counted) * 1e6 for stage, seconds in spent.items()}
    out["rest"] = out["total"] - sum(
        v for k, v in out.items() if k != "total" and not k.startswith(" ")
    )
    return out


def top_functions(decider: Any, payloads: list[bytes], n: int) -> str:
    """cProfile's top ``n`` functions by own time over the decisions alone."""
    requests = [PersonalizeRequest.model_validate_json(b) for b in payloads]
    profiler = cProfile.Profile()
    profiler.enable()
    for request in requests:
        decider.personalize_payload(request)
    profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(n)
    return out.getvalue()


def batch_sizes(text: str) -> list[int]:
    try:
        sizes = [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not comma-separated whole numbers: {text!r}") from None
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError(f"batch sizes must be at least 1: {text!r}")
    return sizes


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=3000)
    ap.add_argument("--users", type=int, default=5000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--profile", type=int, default=0, help="print the top N functions")
    ap.add_argument(
        "--stage-cpu", action="store_true", help="thread CPU per stage, inside the decisions"
    )
    ap.add_argument(
        "--stack-only",
        action="store_true",
        help="CPU per request of the app with the decision replaced by a fixed answer",
    )
    ap.add_argument(
        "--feedback", action="store_true", help="CPU per feedback, through the app and alone"
    )
    ap.add_argument(
        "--feedback-batches",
        type=batch_sizes,
        default=[],
        help="CPU per feedback applied in batches of these sizes (comma-separated, e.g. 1,4,16)",
    )
    ap.add_argument("--model-dir", type=Path, default=Path("/tmp/tailorbot-bench-model"))
    add_history_arg(ap)
    ap.add_argument(
        "--decision-threads",
        type=int,
        default=None,
        help="the server's setting (0: decisions on the event loop, as personalize.py --pin)",
    )
    args = ap.parse_args(argv)
    if args.feedback and args.requests < FEEDBACK_WARMUP + 2:
        ap.error(f"--feedback needs at least {FEEDBACK_WARMUP + 2} --requests")
    if args.feedback_batches and args.requests < FEEDBACK_WARMUP + max(args.feedback_batches) * len(
        args.feedback_batches
    ):
        ap.error("--feedback-batches needs --requests for a warm-up and a batch of each size")
    asyncio.run(run(args))


if __name__ == "__main__":
    sys.exit(main())
