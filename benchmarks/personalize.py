"""`POST /v1/personalize` over real HTTP at a fixed arrival rate (open loop).

Starts `tailorbot serve --workers N` on a data dir with a trained intent model (trained once
into --model-dir and copied), then sends ``--rate`` requests/s for ``--seconds`` seconds with the
open-loop generator of loadgen.py: each request's latency counts from when it was *due*, so
queueing shows (no coordinated omission). Messages are Banking77 test sentences; users are
spread over ``--users`` ids, a share of which already have features.

    .venv/bin/python benchmarks/personalize.py --rate 500 --workers 1
    .venv/bin/python benchmarks/personalize.py --rate 1000 --workers 2 \
        --log-url redis://127.0.0.1:6379/0 --store-url redis://127.0.0.1:6379/0
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import tempfile
from pathlib import Path

import orjson
from _harness import add_backend_args, machine, server_for
from loadgen import LoadResult, run_open_loop

from tailorbot.models import registry
from tailorbot.models.intent import default_dataset, train_intent_model


def ensure_model(model_dir: Path) -> None:
    try:
        registry.latest(model_dir, kind="intent")
    except registry.ModelNotFoundError:
        trained = train_intent_model(default_dataset("train"))
        registry.save(model_dir, trained.model, trained.metadata, kind="intent")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rate", type=float, default=500.0)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--warmup-seconds", type=float, default=3.0)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--users", type=int, default=5000)
    ap.add_argument("--model-dir", default="/tmp/tailorbot-bench-model")
    add_backend_args(ap)
    args = ap.parse_args()

    ensure_model(Path(args.model_dir))
    texts = list(default_dataset("test").texts)
    bodies = [
        orjson.dumps(
            {
                "user_id": f"bench-{i % args.users}",
                "session_id": f"s-{i % args.users}",
                "message": texts[i % len(texts)],
            }
        )
        for i in range(len(texts) * 3)
    ]
    with tempfile.TemporaryDirectory(prefix="tb-bench-pers-") as data_dir:
        shutil.copytree(Path(args.model_dir) / "models", Path(data_dir) / "models")
        with server_for(args, workers=args.workers, data_dir=data_dir) as (
            url,
            metrics_url,
            backends,
        ):
            host, port = url.removeprefix("http://").split(":")

            def load(seconds: float) -> LoadResult:
                return asyncio.run(
                    run_open_loop(
                        host,
                        int(port),
                        "/v1/personalize",
                        lambda i: bodies[i % len(bodies)],
                        rate=args.rate,
                        duration_s=seconds,
                    )
                )

            load(args.warmup_seconds)  # first requests pay for lazy imports and caches
            result = load(args.seconds)
    print(
        json.dumps(
            {
                "benchmark": "personalize",
                "machine": machine(),
                "server_workers": args.workers,
                "backends": backends,
                "seconds": args.seconds,
                **result.summary(),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
