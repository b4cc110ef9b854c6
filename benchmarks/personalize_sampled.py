"""Where a `POST /v1/personalize` spends the server's CPU over real HTTP, stage by stage:
py-spy samples the server's event loop under the open-loop load.

decision_stages.py counts each stage's instructions in a loop of its own, and
decision_profile.py times the stages in process, without HTTP. Neither shows what a stage
costs inside the real server, where the HTTP layer, the recorder thread and the stream
worker's process share the machine and the decision's working set (the model tables,
SQLite's pages, the KB) does not stay in the CPU's caches between requests. This benchmark
runs the server as ``personalize.py --pin`` does (decisions on the event loop, the server on
one core), and while the load runs, ``py-spy record`` samples the server process
(``--sample-rate`` a second, without stopping it). Each stage's share of the event loop's
samples (every sample whose stack holds the stage's function), times the event loop's CPU
per request (the server's ``tailorbot_thread_cpu_seconds`` of its main thread), gives its
µs per request. With ``--feedback-share F`` the load includes feedback (as personalize.py
does), and the event loop's CPU per request includes handling it. A share of a few percent
carries a sampling error of about a tenth of itself at the defaults (some 2,500 samples),
a part of a fraction of a percent a third or more; the report gives the count. With
``--feedback-share``, the CPU a request is per personalize request (feedback included), not
per request of either kind as in personalize.py.

Samples in the event loop's own machinery (uvloop, socket reads and writes; uvloop writes a
response at the end of the loop's turn, not inside the route) have no Python frame below
the loop and belong to no stage; ``"the event loop's own work"`` is their share.

Needs py-spy (a development dependency) and the right to read another process's memory
(ptrace: root, or ``kernel.yama.ptrace_scope`` 0).

    .venv/bin/python benchmarks/personalize_sampled.py --rate 1000 --seconds 20
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import threading
from collections import Counter
from pathlib import Path

from _harness import (
    REPORTED,
    add_backend_args,
    count_arg,
    machine,
    quiet_collector,
    server_for,
    share_arg,
)
from cpu import pin_one_core
from feedback_load import personalize_load
from personalize import (
    add_load_args,
    ensure_model,
    request_bodies,
    server_data,
    server_samples,
    thread_cpu,
    warm_up,
)

# (label, function name as py-spy prints it, file it is in); indented labels are parts of
# the stage above them. The event loop's samples are those under uvicorn's server.
EVENT_LOOP = ("Server.run", "uvicorn/server.py")
STAGES: tuple[tuple[str, str, str], ...] = (
    ("HTTP parsing (uvicorn, httptools)", "HttpToolsProtocol.data_received", "httptools_impl.py"),
    ("the ASGI app", "RequestResponseCycle.run_asgi", "httptools_impl.py"),
    ("  the lean route", "LeanPost.__call__", "tailorbot/api/fast.py"),
    ("    the body read and parsed", "authorized_body", "tailorbot/api/fast.py"),
    ("    the user's read made ahead (Redis)", "DecisionService.read_user_ahead", "service.py"),
    ("    the decision", "DecisionService.personalize_payload", "decisions/service.py"),
    ("      intent", "TfidfIntentModel.predict_one", "models/intent/tfidf.py"),
    ("      read the user", "DecisionService._read_user", "decisions/service.py"),
    ("        the store's read", "Stores.profile_and_record", "tailorbot/store/base.py"),
    ("        the feature view", "feature_view", "tailorbot/features/view.py"),
    ("      recommend", "DecisionService._articles", "decisions/service.py"),
    ("      context, bandit, reply, record built", "DecisionService._decide", "service.py"),
    ("        the bandit", "DecisionService._variant", "decisions/service.py"),
    ("      message event, through the door, queued", "DecisionService._record", "service.py"),
    ("        the event as checked values", "checked_message", "decisions/records.py"),
    ("        the door's redaction", "Redactor.redact_event", "tailorbot/events/redact.py"),
    ("      health metrics", "DecisionService._observe", "decisions/service.py"),
    ("    the answer's payload", "personalize_payload", "decisions/records.py"),
    ("    the answer handed to uvicorn (headers, body)", "Response.__call__", "responses.py"),
)
LOOP_OWN = "the event loop's own work (uvloop, socket reads and writes)"
FRAME = re.compile(r"^(?P<name>.+?) \((?P<file>[^:()]+)(?::\d+)?\)$")


def py_spy() -> str:
    """The py-spy executable: on the PATH or beside this Python (the venv's)."""
    found = shutil.which("py-spy") or shutil.which("py-spy", path=str(Path(sys.executable).parent))
    if found is None:
        raise SystemExit("needs py-spy (a development dependency: make .venv/.installed)")
    return found


def sample(pid: int, seconds: float, rate: int, out: Path) -> subprocess.Popen[bytes]:
    """py-spy recording ``pid`` (all its threads) for ``seconds``, raw collapsed stacks."""
    command = [py_spy(), "record", "--pid", str(pid), "--duration", str(int(seconds))]
    command += ["--rate", str(rate), "--format", "raw", "--nonblocking", "--output", str(out)]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def stage_shares(raw: str) -> tuple[int, dict[str, float]]:
    """(the event loop's samples, each stage's share of them) from py-spy's raw output."""
    counts: Counter[str] = Counter()
    loop_samples = own = 0
    for line in raw.splitlines():
        stack, _, n = line.rpartition(" ")
        if not n.isdigit():
            continue
        frames = [m.groups() for f in stack.split(";") if (m := FRAME.match(f))]
        if not any(name == EVENT_LOOP[0] and file.endswith(EVENT_LOOP[1]) for name, file in frames):
            continue
        loop_samples += int(n)
        own += int(n) * (frames[-1][0] == "Runner.run")  # nothing in Python below the loop
        found = {
            label
            for label, want, in_file in STAGES
            if any(name == want and file.endswith(in_file) for name, file in frames)
        }
        for label in found:
            counts[label] += int(n)
    if not loop_samples:
        return 0, {}
    shares = {label: counts[label] / loop_samples for label, _, _ in STAGES}
    return loop_samples, {**shares, LOOP_OWN: own / loop_samples}


def run(args: argparse.Namespace, bodies: list[bytes]) -> dict:
    # the models, and with --history the users' state, as personalize.py prepares them
    with (
        server_data(args) as data_dir,
        server_for(args, data_dir=str(data_dir)) as (url, _, backends, pid),
    ):
        host, port = url.removeprefix("http://").split(":")

        def load(seconds: float) -> int:
            result, _, _ = personalize_load(
                host, int(port), lambda i: bodies[i % len(bodies)], rate=args.rate,
                seconds=seconds, share=args.feedback_share,
            )  # fmt: skip
            return len(result.latencies_s)

        warm_up(pid, args, lambda: load(args.warmup_seconds))
        out = data_dir / "samples.txt"
        before = thread_cpu(server_samples(url))
        # the sampler starts with the load and stops a second before it ends
        spy = sample(pid, args.seconds - 1, args.sample_rate, out)
        stderr: list[bytes] = []
        reader = threading.Thread(target=lambda: stderr.append(spy.stderr.read()))  # type: ignore[union-attr]
        reader.start()
        with quiet_collector():
            served = max(1, load(args.seconds))
        after = thread_cpu(server_samples(url))
        try:
            spy.wait(timeout=60)
        except subprocess.TimeoutExpired:
            spy.kill()
            spy.wait()
        reader.join()
        said = b"".join(stderr).decode(errors="replace")[-2000:]
        if not out.exists():
            raise SystemExit(f"py-spy wrote no samples: {said}")
        loop_samples, shares = stage_shares(out.read_text())
        if not loop_samples:
            raise SystemExit(f"no sample of the server's event loop (uvicorn's Server.run): {said}")
        if args.samples_out is not None:  # for a flame graph, or a stage not listed here
            shutil.copyfile(out, args.samples_out)
    loop_us = (after.get("MainThread", 0.0) - before.get("MainThread", 0.0)) / served * 1e6
    return {
        "benchmark": "personalize_sampled",
        "machine": machine(),
        "backends": backends,
        "rate": args.rate,
        "seconds": args.seconds,
        "feedback_share": args.feedback_share,
        "history": f"{args.history:,} decisions, {args.reported:.0%} reported on, a CF model"
        if args.history
        else "none (a fresh data dir)",
        "requests": served,
        "event_loop_cpu_us_per_request": round(loop_us, 1),
        "event_loop_samples": loop_samples,
        "stages_us_per_request": {
            label: round(share * loop_us, 1) for label, share in shares.items()
        },
        "stages_share": {label: round(share, 3) for label, share in shares.items()},
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_load_args(ap, rate=1000.0)
    ap.add_argument("--sample-rate", type=int, default=250, help="py-spy samples a second")
    ap.add_argument("--samples-out", type=Path, help="keep py-spy's raw stacks in this file")
    ap.add_argument(
        "--history",
        type=count_arg,
        default=0,
        help="as personalize.py --history: decisions made, applied and reported on before the "
        "server starts (embedded backends only here; default 0: a fresh data dir)",
    )
    ap.add_argument(
        "--reported",
        type=share_arg,
        default=REPORTED,
        help=f"with --history, the share of it reported on (default {REPORTED})",
    )
    add_backend_args(ap)
    ap.set_defaults(decision_threads=0)
    args = ap.parse_args()
    if args.seconds < 3:
        ap.error("--seconds must be at least 3")
    if args.history and (args.log_url or args.store_url):
        ap.error("--history prepares the embedded backends only here")
    py_spy()  # before the server starts
    pin_one_core(ap, args)  # the server on one core, as personalize.py --pin
    ensure_model(Path(args.model_dir))
    print(json.dumps(run(args, request_bodies(args.users)), indent=2))


if __name__ == "__main__":
    main()
