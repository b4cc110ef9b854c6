"""What a user's history costs: a decision's read of the user, and the worker's apply.

Every decision reads its user's feature record and builds the feature view; the stream worker
reads, updates and writes the same record for each batch of the user's events. Both costs grow
with what the record holds: the events of the last 30 days (their ids, for exactly-once, and
their times), the sessions and ratings. A support platform's request stream is weighted by
activity: the busiest customers send the most messages, so their cost is the tail's.

For each ``--sizes`` (events of one user over the last 29 days, in sessions of 3-8 events: a
mix of customer and bot messages, article views, ratings and resolutions), this builds the
user's state as the worker does (``apply_event``), stores it in a real SQLite store, and
measures, in CPU µs (the median of ``--rounds`` rounds):

* **decision read**: ``Stores.profile_and_record`` and ``feature_view``, what a decision
  does to read its user (DecisionService._read_user);
* **worker apply**: one more event for each of 20 such users, applied to their states and
  written in one batch (``apply_event``, ``features.put_many``: one transaction), per user:
  what the worker does for a busy user in a batch (its state cache holds the states, so it
  reads none; for a user whose dedupe ids are kept apart, from 256 on, it writes the one id
  the event added: ``DedupeDelta``).

With ``--decision``, the store is that of the real app (embedded backends, the Banking77
model of personalize.py, trained once into ``--model-dir``), and a third figure is the whole
decision for the user (``DecisionService.personalize_payload`` on Banking77 test messages, the
user in the personalized arm; its decisions are written between calls, and no worker applies
their message events, so the user's history stays as built).

With ``--instructions``, the decision read alone, counted in instructions by valgrind
(``_callgrind.py``) over ``--reads`` reads of each size: the figure a machine's load cannot
move, for an A/B of two codes on a busy host.

Beside them, in the same run, the same for a user without history (0 events): each row's
ratio to it is the figure that holds across machines.

    .venv/bin/python benchmarks/user_history.py --sizes 5,50,500,5000 [--store-url redis://...]
    .venv/bin/python benchmarks/user_history.py --decision
    .venv/bin/python benchmarks/user_history.py --instructions
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import random
import shutil
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from _callgrind import control, dumped_counts, run_counted
from _harness import backend_env, cleanup_redis
from decision_profile import started_app
from personalize import ensure_model

from tailorbot.events.codec import event_epoch
from tailorbot.features.memory import PERSONALIZED_ARM
from tailorbot.features.params import FeatureParams
from tailorbot.features.state import apply_event, dedupe_change, new_state
from tailorbot.features.view import feature_view
from tailorbot.models.intent.dataset import default_dataset
from tailorbot.services.decisions.schemas import PersonalizeRequest
from tailorbot.store import open_stores
from tailorbot.store.base import FeatureRecord, Stores
from tailorbot.store.state_blob import keeps_apart

DAY_S = 86_400.0
KINDS = (  # (type, weight): what a support conversation's events are made of
    ("customer", 4),
    ("bot", 4),
    ("article_viewed", 1),
    ("rating", 1),
    ("resolution", 1),
)
FLUSH_AT = 500  # queued decisions written between measured ones (the queue is bounded)
BATCH = 20  # users the worker reads, applies and writes at once (one transaction)
INTENTS = ("card_arrival", "lost_or_stolen_card", "top_up_failed", "exchange_rate", "pin_blocked")


def history(n: int, now: float, rng: random.Random) -> list[dict[str, Any]]:
    """``n`` events of one user over the last 29 days, in sessions of 3-8 events."""
    events: list[dict[str, Any]] = []
    step = 29 * DAY_S / max(n, 1)
    at = now - 29 * DAY_S
    kinds = [kind for kind, weight in KINDS for _ in range(weight)]
    while len(events) < n:
        session = uuid.UUID(int=rng.getrandbits(128)).hex
        for _ in range(rng.randint(3, 8)):
            at += step
            events.append(_event(rng.choice(kinds), session, at, rng))
    return events[:n]


def _event(kind: str, session: str, at: float, rng: random.Random) -> dict[str, Any]:
    event: dict[str, Any] = {
        "event_id": str(uuid.UUID(int=rng.getrandbits(128))),
        "user_id": "u",
        "session_id": session,
        "timestamp": datetime.fromtimestamp(at, UTC).isoformat().replace("+00:00", "Z"),
        "channel": "web",
    }
    article = f"kb-{rng.randint(1, 40)}"
    if kind in ("customer", "bot"):
        event.update(type="message", role=kind, text="I am still waiting on my card")
        if kind == "customer":
            event["intent"] = rng.choice(INTENTS)
    elif kind == "article_viewed":
        event.update(type="article_viewed", article_id=article)
    elif kind == "rating":
        event.update(type="rating", score=rng.randint(1, 5))
    else:
        event.update(type="resolution", resolved=rng.random() < 0.6, article_id=article)
    return event


def cpu_us(
    call: Callable[[], Any], reps: int, rounds: int, setup: Callable[[], Any] | None = None
) -> float:
    """Median over ``rounds`` of the thread CPU µs of one ``call`` (after one unmeasured);
    ``setup``, unmeasured, runs before each."""
    if setup is not None:
        setup()
    call()
    per_round = []
    for _ in range(rounds):
        spent = 0
        for _ in range(reps):
            if setup is not None:
                setup()
            started = time.thread_time_ns()
            call()
            spent += time.thread_time_ns() - started
        per_round.append(spent / reps / 1_000)
    return statistics.median(per_round)


def built(n: int, now: float, rng: random.Random) -> dict[str, Any]:
    """The state of a user with ``n`` events of history, as the worker builds it."""
    params = FeatureParams()
    state = new_state()
    for event in history(n, now, rng):
        apply_event(state, event, params)
    return state


def measure(
    stores: Stores,
    n: int,
    rounds: int,
    rng: random.Random,
    decider: Any = None,
) -> dict[str, float]:
    """The row of one size; with ``decider`` (the app's decision service), the whole
    decision too."""
    now = time.time()
    params = FeatureParams()
    state = built(n, now, rng)
    blob = orjson.dumps(state)
    users = [f"user-{n}-{i}" for i in range(BATCH)]
    if decider is not None:
        users[0] = personalized_user(decider, f"user-{n}")
    offsets = iter(range(1, 10**9))
    cached: dict[str, dict[str, Any]] = {}

    def reset() -> None:  # the users' history as built, each time: applying must not grow it
        offset = next(offsets)
        stores.features.put_many([FeatureRecord(u, state, 0, offset, now, now) for u in users])
        cached.update((u, orjson.loads(blob)) for u in users)

    reset()
    reps = max(3, 2_000 // max(n, 1))

    def read() -> None:
        profile, record = stores.profile_and_record(users[0])
        feature_view(record, profile, now)

    def apply() -> None:
        offset = next(offsets)
        written = []
        for user in users:
            applied = cached[user]
            event, held = _event("customer", "s-new", now, rng), len(applied["seen"])
            apart = keeps_apart(applied, None)  # as reset() wrote it: the worker's rule
            apply_event(applied, event, params)
            change = dedupe_change(applied, held, {event["event_id"]: event_epoch(event)})
            record = FeatureRecord(user, applied, 0, offset, now, now)
            record.dedupe = change if apart else None  # a few ids: in the blob, whole
            written.append(record)
        stores.features.put_many(written)

    row = {
        "events": n,
        "bytes": len(blob),
        "dedupe bytes": len(orjson.dumps(state["seen"])),
        "sessions": len(state["sessions"]),
        "read": cpu_us(read, reps * 10, rounds),
        "apply": cpu_us(apply, max(3, reps // 5), rounds, setup=reset) / BATCH,
    }
    if decider is not None:
        reset()
        decide, written = deciding(decider, users[0])
        row["decision"] = cpu_us(decide, max(10, reps), rounds, setup=written)
    return row


def personalized_user(decider: Any, prefix: str) -> str:
    """A user id starting with ``prefix`` that the experiment serves the personalized arm."""
    for i in range(1_000):
        user = f"{prefix}-p{i}"
        if decider.experiment.arm_for(user) == PERSONALIZED_ARM:
            return user
    raise RuntimeError("no user of the personalized arm in 1,000 ids")


def deciding(decider: Any, user: str) -> tuple[Callable[[], Any], Callable[[], Any]]:
    """One decision for ``user`` on the next Banking77 test message, and the unmeasured step
    between decisions that writes the recorder's queue now and then (it is bounded)."""
    texts = list(default_dataset("test").texts)
    requests = [
        PersonalizeRequest(user_id=user, session_id="s-bench", message=text) for text in texts
    ]
    made = itertools.count()

    def decide() -> None:
        decider.personalize_payload(requests[next(made) % len(requests)])

    def written() -> None:
        if decider.recorder.pending() >= FLUSH_AT and not decider.recorder.flush(600):
            raise RuntimeError("the decision recorder did not write its queue")

    return decide, written


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--sizes", default="5,50,500,5000", help="events per user, comma-separated (0 is always)"
    )
    ap.add_argument("--rounds", type=int, default=7, help="rounds per figure (median)")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument(
        "--store-url", help="e.g. redis://127.0.0.1:6379/0 (default: a new SQLite file)"
    )
    ap.add_argument("--decision", action="store_true", help="the whole decision too (the app)")
    ap.add_argument("--model-dir", type=Path, default=Path("/tmp/tailorbot-bench-model"))
    ap.add_argument("--instructions", action="store_true", help="the decision read in instructions")
    ap.add_argument("--reads", type=int, default=50, help="reads counted per size")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    sizes = sorted({int(s) for s in args.sizes.split(",")} - {0})  # 0 is always
    if args.instructions and (args.decision or args.store_url or args.reads < 1):
        ap.error("--instructions counts reads of its own SQLite store: --reads >= 1, no "
                 "--decision or --store-url")  # fmt: skip
    if args.instructions and None in (shutil.which("valgrind"), shutil.which("callgrind_control")):
        ap.error("--instructions needs valgrind (apt-get install valgrind)")
    if args.child:
        count_reads([0, *sizes], args.reads, random.Random(args.seed))
        return
    if args.instructions:
        print_instructions([0, *sizes], args)
        return
    if args.decision and args.store_url:
        ap.error("--decision measures the app's own (embedded) store: no --store-url")
    rng = random.Random(args.seed)
    if args.decision:
        url = "sqlite (the app's)"
        rows = asyncio.run(with_decisions(args, sizes, rng))
    else:
        tmp = Path(tempfile.mkdtemp(prefix="tailorbot-history-"))
        env, _ = backend_env(args)  # a Redis store gets a prefix of its own, deleted after
        url = env.get("TAILORBOT_STORE_URL", f"sqlite:///{tmp}/store.db")
        stores = open_stores(url)
        try:
            rows = [measure(stores, n, args.rounds, rng) for n in [0, *sizes]]
        finally:
            stores.close()
            cleanup_redis(env)
            shutil.rmtree(tmp, ignore_errors=True)
    reference = rows[0]  # the user without history
    print(f"store: {url.split('://')[0]}")
    figures = ["read", "apply", *(["decision"] if args.decision else [])]
    names = {"read": "decision read", "apply": "worker apply", "decision": "whole decision"}
    head = "".join(f" {names[f]} CPU µs | × no history |" for f in figures)
    print(f"| events (30 d) | sessions | state bytes (dedupe ids) |{head}")
    print("| ---: " * (3 + 2 * len(figures)) + "|")
    for row in rows:
        cells = "".join(f" {row[f]:,.1f} | {row[f] / reference[f]:.1f} |" for f in figures)
        print(
            f"| {row['events']:,} | {row['sessions']:,} | {row['bytes']:,} "
            f"({row['dedupe bytes']:,}) |{cells}"
        )


def print_instructions(sizes: list[int], args: argparse.Namespace) -> None:
    """The decision read of each size counted under valgrind (:func:`count_reads`, a child),
    in instructions per read."""
    with tempfile.TemporaryDirectory(prefix="tb-history-") as tmp:
        child = [__file__, "--child", "--sizes", ",".join(map(str, sizes[1:])),
                 "--reads", str(args.reads), "--seed", str(args.seed)]  # fmt: skip
        log = run_counted(child, tmp)
        counts = {n: total / args.reads for n, total in dumped_counts(tmp, "read").items()}
    if set(counts) != set(sizes):
        raise SystemExit(f"no count for {sorted(set(sizes) - set(counts))}:\n{log[-3000:]}")
    print("store: sqlite; the decision read (the store's read and the feature view)")
    print("| events (30 d) | instructions a read | × no history |")
    print("| ---: | ---: | ---: |")
    for n in sizes:
        print(f"| {n:,} | {counts[n] / 1000:,.1f} k | {counts[n] / counts[0]:.1f} |")


def count_reads(sizes: list[int], reads: int, rng: random.Random) -> None:
    """In the counted child: each size's user stored, then ``reads`` decision reads of it
    counted, dumped as ``read<size>``."""
    now = time.time()
    with tempfile.TemporaryDirectory(prefix="tb-history-") as tmp:
        stores = open_stores(f"sqlite:///{tmp}/store.db")
        try:
            for n in sizes:
                user = f"user-{n}"
                stores.features.put_many([FeatureRecord(user, built(n, now, rng), 0, 1, now, now)])
                for _ in range(3):  # warm: the statements prepared, the store's row cache
                    feature_view(stores.profile_and_record(user)[1], None, now)
                control("--instr=on")
                control("--zero")
                for _ in range(reads):
                    profile, record = stores.profile_and_record(user)
                    feature_view(record, profile, now)
                control(f"--dump=read{n}")
                control("--instr=off")
        finally:
            stores.close()


async def with_decisions(
    args: argparse.Namespace, sizes: list[int], rng: random.Random
) -> list[dict[str, float]]:
    ensure_model(args.model_dir)
    async with started_app(args.model_dir, decision_threads=0) as (app, decider):
        stores = app.state.runtime.stores
        return [measure(stores, n, args.rounds, rng, decider) for n in [0, *sizes]]


if __name__ == "__main__":
    main()
