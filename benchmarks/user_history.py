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
  reads none).

Beside them, in the same run, the same two for a user without history (0 events): each row's
ratio to it is the figure that holds across machines.

    .venv/bin/python benchmarks/user_history.py --sizes 0,5,50,500,5000 [--store-url redis://...]
"""

from __future__ import annotations

import argparse
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
from _harness import backend_env, cleanup_redis

from tailorbot.features.params import FeatureParams
from tailorbot.features.state import apply_event, new_state
from tailorbot.features.view import feature_view
from tailorbot.store import open_stores
from tailorbot.store.base import FeatureRecord, Stores

DAY_S = 86_400.0
KINDS = (  # (type, weight): what a support conversation's events are made of
    ("customer", 4),
    ("bot", 4),
    ("article_viewed", 1),
    ("rating", 1),
    ("resolution", 1),
)
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


def measure(stores: Stores, n: int, rounds: int, rng: random.Random) -> dict[str, float]:
    now = time.time()
    params = FeatureParams()
    state = new_state()
    for event in history(n, now, rng):
        apply_event(state, event, params)
    blob = orjson.dumps(state)
    users = [f"user-{n}-{i}" for i in range(BATCH)]
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
            apply_event(applied, _event("customer", "s-new", now, rng), params)
            written.append(FeatureRecord(user, applied, 0, offset, now, now))
        stores.features.put_many(written)

    return {
        "events": n,
        "bytes": len(blob),
        "dedupe bytes": len(orjson.dumps(state["seen"])),
        "sessions": len(state["sessions"]),
        "read": cpu_us(read, reps * 10, rounds),
        "apply": cpu_us(apply, max(3, reps // 5), rounds, setup=reset) / BATCH,
    }


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="0,5,50,500,5000", help="events per user, comma-separated")
    ap.add_argument("--rounds", type=int, default=7, help="rounds per figure (median)")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument(
        "--store-url", help="e.g. redis://127.0.0.1:6379/0 (default: a new SQLite file)"
    )
    args = ap.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    rng = random.Random(args.seed)
    tmp = Path(tempfile.mkdtemp(prefix="tailorbot-history-"))
    env, _ = backend_env(args)  # a Redis store gets a prefix of its own, deleted after
    url = env.get("TAILORBOT_STORE_URL", f"sqlite:///{tmp}/store.db")
    stores = open_stores(url)
    try:
        reference = measure(stores, 0, args.rounds, rng)
        rows = [reference if n == 0 else measure(stores, n, args.rounds, rng) for n in sizes]
    finally:
        stores.close()
        cleanup_redis(env)
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"store: {url.split('://')[0]}")
    print(
        "| events (30 d) | sessions | state bytes (dedupe ids) | decision read CPU µs "
        "| × no history | worker apply CPU µs | × no history |"
    )
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for row in rows:
        print(
            f"| {row['events']:,} | {row['sessions']:,} | {row['bytes']:,} "
            f"({row['dedupe bytes']:,}) | {row['read']:,.1f} "
            f"| {row['read'] / reference['read']:.1f} | {row['apply']:,.1f} "
            f"| {row['apply'] / reference['apply']:.1f} |"
        )


if __name__ == "__main__":
    main()
