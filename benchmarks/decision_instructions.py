"""Instructions per `POST /v1/personalize`, counted by valgrind: figures the machine's load
cannot move.

CPU time on the shared benchmark machines moved by ±20 % between runs minutes apart (and by
2x between days), which hides any change of a few per cent. Valgrind's callgrind counts the
instructions a process executes instead: the same code on the same inputs counts the same
whatever else the machine does (runs of this script agree within about 0.5 %). Each
subject runs under ``valgrind --tool=callgrind`` with counting off through start-up, imports,
model loading and a warm-up of 200 requests; counting is switched on (``callgrind_control``)
for ``--requests`` Banking77 test messages from ``--users`` users (as personalize.py sends
them), then off: the count over ``--requests`` is its instructions per request. Before the
warm-up, what the users' history left in memory is frozen out of the garbage collector's
full passes, as decision_stages.py freezes its own: one full pass over it fell in the
counted window or not, which moved a count by 1.3 %.

Subjects, in one process without the network (as decision_profile.py):

* ``reference``: the trivial FastAPI route of reference_app.py through an in-process ASGI
  client (the ratio to it is the figure to compare across versions of the stack);
* ``asgi``: the whole app (middleware, the lean route, the decision thread, the JSON body;
  with ``--decision-threads 0`` the decision on the event loop, as personalize.py's runs
  with that option have it);
* ``stack``: the same app with the decision replaced by one answer made before counting
  (the HTTP stack's own share of ``asgi``: middleware, body, validation, the JSON answer);
* ``decision``: ``DecisionService.personalize_payload`` alone;
* ``intent``: the intent model's ``predict_one`` alone;
* ``feedback``: ``POST /v1/feedback`` through the whole app (feedback_load.py's reports),
  each on a decision of its own made and written before counting starts;
* ``feedback-batch``: the same reports applied as the server's feedback thread applies
  them under load (``DecisionService.feedback_batch``, ``--feedback-batch`` at a time: one
  log append and one store write a batch), without the HTTP route.

Every thread counts, so ``asgi`` and ``decision`` include the decision recorder: it writes
batches of exactly ``--record-batch`` decisions (under valgrind a decision takes ~50x longer,
so the time-based linger would write batches of one or two); what the warm-up queued is
written before counting starts, and the counted requests' last write is counted.
What instructions cannot show: the kernel (sockets, file writes), the HTTP server (uvicorn's
parsing: personalize.py measures those over real HTTP), and what memory stalls cost (a
product over a large matrix counts few instructions for its time). The users have history
first (``--history``, see decision_profile.give_history; ``--history 0`` for none, as in
docs/benchmarks.md before its nineteenth session).

``--log-url`` / ``--store-url`` (Redis) run the subjects on those backends, under a fresh key
prefix deleted afterwards: with a Redis store, ``asgi`` decides on the event loop after
awaiting the user's read, as a server does by default there. The Redis server's own
instructions are not counted (another process).

    .venv/bin/python benchmarks/decision_instructions.py --requests 500
    .venv/bin/python benchmarks/decision_instructions.py --subjects reference,asgi \
        --log-url redis://127.0.0.1:6379/0 --store-url redis://127.0.0.1:6379/0
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import gc
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from _callgrind import control, quiet_background, run_counted
from _harness import add_history_arg, backend_env, cleanup_redis

SUBJECTS = ("reference", "asgi", "stack", "decision", "intent", "feedback", "feedback-batch")
WARMUP = 200  # requests answered before counting starts
PATH = "/v1/personalize"


def count_instructions(subject: str, args: argparse.Namespace) -> int:
    """Instructions valgrind counts while this script, as ``--child``, answers the counted
    requests: instrumentation stays off through start-up and warm-up (a few times faster
    than counting them) and is switched on for the counted part only."""
    with tempfile.TemporaryDirectory(prefix="tb-instr-") as tmp:
        log = run_counted(
            [
                __file__, "--child", subject, "--requests", str(args.requests),
                "--users", str(args.users), "--record-batch", str(args.record_batch),
                "--model-dir", str(args.model_dir), "--history", str(args.history),
                "--reported", str(args.reported),
                "--feedback-batch", str(args.feedback_batch),
                *(() if args.decision_threads is None
                  else ("--decision-threads", str(args.decision_threads))),
            ],
            tmp,
        )  # fmt: skip
    found = re.search(r"Collected : (\d+)", log)
    if found is None:
        raise SystemExit(f"{subject}: valgrind counted nothing:\n{log[-3000:]}")
    return int(found.group(1))


def child(args: argparse.Namespace) -> None:
    """One subject: start-up and warm-up, then (counted) the requests and the recorder's
    last write."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from personalize import ensure_model, request_bodies

    ensure_model(args.model_dir)
    bodies = request_bodies(args.users, WARMUP + args.requests)
    if args.child == "reference":
        from reference_app import app

        asyncio.run(_asgi_requests(app, bodies))
        control("--instr=off")
        return
    asyncio.run(_tailorbot(args, bodies))


async def _asgi_requests(
    app: object, bodies: list[bytes], path: str = PATH, settle: Callable[[], None] = lambda: None
) -> None:
    """``bodies`` through ``app``, counted from the first after the warm-up; ``settle`` is
    called before counting starts."""
    from decision_profile import call

    for i, body in enumerate(bodies):
        if i == WARMUP:
            settle()
            control("--instr=on")
        status, answer = await call(app, path, body)  # type: ignore[arg-type]
        if status != 200:
            raise RuntimeError(f"{path} answered {status}: {answer[:300]!r}")


async def _stack_requests(
    app: object, decider: object, bodies: list[bytes], settle: Callable[[], None]
) -> None:
    """The requests through the whole app, each answered with one decision's answer made
    first: what the app costs around the decision."""
    import tailorbot.api.fast as fast
    from tailorbot.services.decisions.schemas import PersonalizeRequest

    answer = decider.personalize_payload(PersonalizeRequest.model_validate_json(bodies[0]))  # type: ignore[attr-defined]

    async def answered(state: object, decider: object, request: object) -> object:
        return answer

    fast.run_personalize = answered  # type: ignore[assignment]
    await _asgi_requests(app, bodies, settle=settle)


async def _feedback_reports(app: object, decider: object, bodies: list[bytes]) -> list[bytes]:
    """A feedback report on a decision of its own for each body (the decisions made and
    written first, not counted)."""
    from decision_profile import answers, decided

    stream = decided(await answers(app, bodies))  # type: ignore[arg-type]
    if not decider.recorder.flush(timeout_s=600):  # type: ignore[attr-defined]
        raise RuntimeError("the decision recorder did not flush")
    return [stream.next_body(i) for i in range(len(bodies))]


def _feedback_batches(decider: object, reports: list[bytes], size: int) -> None:
    """``reports`` applied ``size`` at a time, as the feedback thread applies them; counted
    from the first after the warm-up."""
    from decision_profile import applied

    from tailorbot.services.decisions.schemas import FeedbackRequest

    requests = [FeedbackRequest.model_validate_json(body) for body in reports]
    for start in range(0, WARMUP, size):
        applied(decider.feedback_batch(requests[start : min(start + size, WARMUP)]))  # type: ignore[attr-defined]
    control("--instr=on")
    for start in range(WARMUP, len(requests), size):
        applied(decider.feedback_batch(requests[start : start + size]))  # type: ignore[attr-defined]


async def _tailorbot(args: argparse.Namespace, bodies: list[bytes]) -> None:
    from decision_profile import started_app
    from personalize import request_bodies

    from tailorbot.services.decisions.schemas import PersonalizeRequest

    history = request_bodies(args.users, args.history)
    started = started_app(
        args.model_dir, args.decision_threads, history=history, reported=args.reported
    )
    async with started as (app, decider):
        recorder = decider.recorder
        recorder.batch, recorder.flush_s = args.record_batch, 3600.0  # batches by size alone
        quiet_background(decider)
        # What the history left (the statistics, their memos, the CF model, the caches) out
        # of the collector's full passes, as decision_stages.py keeps its own: one full pass
        # over it, some 7 M instructions, fell in the counted window or not, and moved the
        # same code's count over 300 requests by 23 k (thirty-fifth session)
        gc.collect()
        gc.freeze()

        def written() -> None:
            # The warm-up's decisions written before counting starts: the recorder's thread
            # lags behind the requests under valgrind, and however many of its batches were
            # still queued were written in the counted window (the same code's count moved
            # by 80 k a request from run to run)
            if not recorder.flush(timeout_s=600):
                raise RuntimeError("the decision recorder did not flush")

        if args.child == "asgi":
            await _asgi_requests(app, bodies, settle=written)
        elif args.child == "stack":
            await _stack_requests(app, decider, bodies, written)
        elif args.child == "feedback":
            from feedback_load import PATH as FEEDBACK_PATH

            reports = await _feedback_reports(app, decider, bodies)
            await _asgi_requests(app, reports, FEEDBACK_PATH, settle=written)
        elif args.child == "feedback-batch":
            _feedback_batches(
                decider, await _feedback_reports(app, decider, bodies), args.feedback_batch
            )
        else:
            requests = [PersonalizeRequest.model_validate_json(b) for b in bodies]
            predict = decider.models.intent.predict_one
            for i, request in enumerate(requests):
                if i == WARMUP:
                    written()
                    control("--instr=on")
                if args.child == "intent":
                    predict(request.message)
                else:
                    decider.personalize_payload(request)
        if not recorder.flush(timeout_s=600):
            raise RuntimeError("the decision recorder did not flush")
        control("--instr=off")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=500, help="counted requests per subject")
    ap.add_argument("--users", type=int, default=5000)
    ap.add_argument("--record-batch", type=int, default=25, help="decisions per recorder write")
    ap.add_argument(
        "--feedback-batch",
        type=int,
        default=12,
        help="feedbacks per batch of the feedback-batch subject (12: about the mean the "
        "server's batches held at 1,000 decisions/s with 30 %% of them reported on)",
    )
    ap.add_argument("--subjects", default=",".join(SUBJECTS), help="comma-separated")
    ap.add_argument("--jobs", type=int, default=2, help="valgrind runs at once")
    ap.add_argument("--model-dir", type=Path, default=Path("/tmp/tailorbot-bench-model"))
    ap.add_argument("--log-url", help="e.g. redis://127.0.0.1:6379/0 (default: embedded)")
    ap.add_argument("--store-url", help="e.g. redis://127.0.0.1:6379/0 (default: embedded)")
    ap.add_argument(
        "--decision-threads",
        type=int,
        default=None,
        help="the server's setting (unset: its default, one thread on the embedded store; "
        "0: decisions on the event loop, as personalize.py --decision-threads 0 runs them)",
    )
    add_history_arg(ap)
    ap.add_argument("--child", choices=SUBJECTS, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.requests < 1 or args.feedback_batch < 1:
        ap.error("--requests and --feedback-batch must be at least 1")
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        raise SystemExit("valgrind is not installed (Debian: apt-get install valgrind)")
    if args.child:
        child(args)
        return
    subjects = [s for s in args.subjects.split(",") if s]
    unknown = sorted(set(subjects) - set(SUBJECTS))
    if unknown:
        ap.error(f"unknown subjects {unknown}; known: {', '.join(SUBJECTS)}")
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from personalize import ensure_model

    ensure_model(args.model_dir)  # once, before the runs that share it
    env, backends = backend_env(args)  # the children's settings read TAILORBOT_* variables
    os.environ.update(env)
    try:
        with concurrent.futures.ThreadPoolExecutor(args.jobs) as pool:
            counts = list(pool.map(lambda subject: count_instructions(subject, args), subjects))
    finally:
        cleanup_redis(env)
    print(f"backends: {backends}")
    per_request = {s: n / args.requests for s, n in zip(subjects, counts, strict=True)}
    print(f"instructions per request ({args.requests} counted after {WARMUP} warm-up):")
    for subject in subjects:
        line = f"  {subject:<14} {per_request[subject] / 1000:>9,.1f} k"
        if "reference" in per_request and subject != "reference":
            line += f"   {per_request[subject] / per_request['reference']:5.2f} x reference"
        print(line)


if __name__ == "__main__":
    main()
