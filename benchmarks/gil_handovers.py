"""How often a decision lets another thread take the GIL, in one process without the network.

In the server a decision thread shares the interpreter lock with the event loop. Each time
a decision releases it (a C call that drops it: SQLite's reads, a tokenizer's batch call),
a busy event loop takes it and keeps it until it blocks or the switch interval (5 ms) runs
out: the decision waits that long. Here a probe thread does nothing but count the times it
gets the lock, giving it back at once (``time.sleep(0)``); with the switch interval set to
10 s it can only get it when the decisions release it. Counted over ``--requests``
decisions of the real app (embedded backends, the model of personalize.py).

Beside it, the one call that made most hand-overs before it was replaced: the static
embedding's tokenizer, ``encode_batch_fast([text])`` against ``encode(text)``, each timed
(wall µs a call) beside a thread spinning in Python.

    .venv/bin/python benchmarks/gil_handovers.py --requests 2000
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from decision_profile import started_app
from personalize import ensure_model, request_bodies

from tailorbot.services.decisions.schemas import PersonalizeRequest


def handovers(work: Callable[[], None]) -> int:
    """Times a probe thread got the GIL while ``work`` ran (switch interval 10 s)."""
    count = [0]
    stop = threading.Event()

    def probe() -> None:
        while not stop.is_set():
            count[0] += 1
            time.sleep(0)  # gives the lock back at once

    interval = sys.getswitchinterval()
    thread = threading.Thread(target=probe)
    thread.start()
    time.sleep(0.01)  # the probe is running
    sys.setswitchinterval(10.0)
    try:
        before = count[0]
        work()
        return count[0] - before
    finally:
        stop.set()
        sys.setswitchinterval(interval)
        thread.join()


def beside_a_spinning_thread(call: Callable[[str], Any], texts: list[str]) -> float:
    """Wall µs per ``call`` while another thread spins in Python."""
    stop = threading.Event()

    def spin() -> None:
        while not stop.is_set():
            pass

    thread = threading.Thread(target=spin)
    thread.start()
    try:
        started = time.perf_counter()
        for text in texts:
            call(text)
        return (time.perf_counter() - started) / len(texts) * 1e6
    finally:
        stop.set()
        thread.join()


async def run(args: argparse.Namespace) -> None:
    ensure_model(args.model_dir)
    async with started_app(args.model_dir) as (_, decider):
        bodies = request_bodies(args.users, args.requests * 2)
        requests = [PersonalizeRequest.model_validate_json(b) for b in bodies]
        for request in requests[: args.requests]:  # warm-up
            decider.personalize_payload(request)
        counted = requests[args.requests :]

        def decide() -> None:
            for request in counted:
                decider.personalize_payload(request)

        print(f"GIL hand-overs per decision: {handovers(decide) / len(counted):.2f}")
        tokenizer = decider.models.intent._embeddings._loaded()[1]
        texts = [r.message for r in counted[:300]]
        for name, call in (
            ("encode_batch_fast([text])", lambda t: tokenizer.encode_batch_fast([t])),
            ("encode(text)", tokenizer.encode),
        ):
            wall = beside_a_spinning_thread(call, texts)
            print(f"tokenizer {name}: {wall:,.1f} µs wall per call beside a spinning thread")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=2000)
    ap.add_argument("--users", type=int, default=5000)
    ap.add_argument("--model-dir", type=Path, default=Path("/tmp/tailorbot-bench-model"))
    asyncio.run(run(ap.parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
