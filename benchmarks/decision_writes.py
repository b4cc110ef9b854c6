"""CPU per decision of ``DecisionStore.put_many`` (what the decision recorder's batches cost
the API process), for the embedded SQLite store and Redis.

Batches of ``--batch`` decision records shaped like the service's, for users of whom a share
(``--erased``) were erased before: the store checks every decision against its user's
erasure time. Process CPU time per decision, median over the last half of ``--rounds``
batches (the store holds ``--rounds * --batch`` decisions at the end). Decision ids as the
service makes them (``--ids time``: time first, UUIDv7's layout), or random (``uuid4``,
what the service used before).

    .venv/bin/python benchmarks/decision_writes.py
    .venv/bin/python benchmarks/decision_writes.py --rounds 3000 --ids random
    .venv/bin/python benchmarks/decision_writes.py --backend redis --redis-url redis://127.0.0.1:6379/0
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
import uuid

from _harness import machine

from tailorbot.events.codec import now_iso
from tailorbot.events.schema import new_event_id
from tailorbot.store import open_stores


def record(user_id: str) -> dict:
    return {
        "user_id": user_id, "session_id": "s1", "channel": "chat", "intent": "card_arrival",
        "confidence": 0.9, "articles": ["kb-1", "kb-2", "kb-3"], "template_id": "card_arrival",
        "variant": "concise", "propensity": 0.9, "context": {f"f{i}": 0.5 for i in range(20)},
        "arm": "personalized", "created_at": now_iso(),
    }  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backend", choices=("sqlite", "redis"), default="sqlite")
    ap.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    ap.add_argument("--batch", type=int, default=50)
    ap.add_argument("--rounds", type=int, default=200)
    ap.add_argument("--users", type=int, default=5000)
    ap.add_argument("--erased", type=float, default=0.1, help="share of users erased before")
    ap.add_argument("--ids", choices=("time", "random"), default="time")
    args = ap.parse_args()
    prefix = f"bench-decisions-{uuid.uuid4().hex[:8]}"
    with tempfile.TemporaryDirectory() as tmp:
        url = (
            f"sqlite:///{tmp}/store.db"
            if args.backend == "sqlite"
            else f"{args.redis_url}?prefix={prefix}"
        )
        stores = open_stores(url)
        try:
            every = max(1, round(1 / args.erased)) if args.erased > 0 else 0
            for u in range(0, args.users, every or args.users + 1):
                stores.features.erase(f"u{u}", 0, 0)
            new_id = new_event_id if args.ids == "time" else (lambda: uuid.uuid4().hex)
            per_decision = []
            for r in range(args.rounds):
                batch = [
                    (new_id(), f"u{(r * args.batch + i) % args.users}", None)
                    for i in range(args.batch)
                ]
                items = [(d, u, record(u)) for d, u, _ in batch]
                started = time.process_time()
                stores.decisions.put_many(items)
                per_decision.append((time.process_time() - started) / len(items) * 1e6)
        finally:
            if args.backend == "redis":
                client = stores.decisions.client  # type: ignore[attr-defined]
                for key in client.scan_iter(f"{prefix}:*", count=1000):
                    client.delete(key)
            stores.close()
    print(
        json.dumps(
            {
                "benchmark": "decision_writes",
                "machine": machine(),
                "backend": args.backend,
                "batch": args.batch,
                "ids": args.ids,
                "decisions_stored": args.rounds * args.batch,
                "cpu_us_per_decision_median": round(
                    statistics.median(per_decision[len(per_decision) // 2 :]), 1
                ),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
