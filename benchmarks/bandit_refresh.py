"""What the bandit's refresh costs a server process: ``VariantPolicy.sync``, which every
server process runs once a second (``TAILORBOT_BANDIT_SYNC_S``) to rebuild its copy of the
response-variant bandit from the store's shared statistics.

Makes the personalized policy of the default settings (its features:
``features.context.feature_names``), teaches it ``--updates`` updates spread over
``--variants`` variants through the store (as feedback does, each context setting
``--nonzero`` of the features), then times ``--syncs`` syncs and reports the thread's CPU
per sync (median of ``--rounds``). On the embedded store by default (a fresh SQLite
file); ``--store-url redis://...`` for Redis (under a fresh key prefix, deleted after).

    .venv/bin/python benchmarks/bandit_refresh.py
    .venv/bin/python benchmarks/bandit_refresh.py --store-url redis://127.0.0.1:6379/0
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
import time
import uuid
from pathlib import Path

from tailorbot.config import Settings
from tailorbot.features.context import AttributeContext, feature_names
from tailorbot.services.decisions.policy import VariantPolicy, make_bandit
from tailorbot.store import open_stores


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--variants", type=int, default=5)
    parser.add_argument("--updates", type=int, default=300)
    parser.add_argument("--nonzero", type=int, default=8)
    parser.add_argument("--syncs", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--store-url", default=None)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="tb-refresh-") as tmp:
        prefix = f"tb-refresh-{uuid.uuid4().hex[:8]}"
        url = args.store_url or f"sqlite:///{tmp}/store.db"
        if url.startswith("redis"):
            url += ("&" if "?" in url else "?") + f"prefix={prefix}"
        stores = open_stores(url)
        try:
            print(json.dumps(measure(stores, args), indent=2))
        finally:
            if url.startswith("redis"):
                client = getattr(stores.counters, "client", None)
                if client is not None:
                    for key in client.scan_iter(match=f"{prefix}:*"):
                        client.delete(key)
            stores.close()


def measure(stores: object, args: argparse.Namespace) -> dict[str, object]:
    settings = Settings.load(data_dir=Path("unused"), seed=3)
    bandit = make_bandit(settings, feature_names(AttributeContext(("new_account",))))
    policy = VariantPolicy(bandit, stores.counters, 0.0)  # type: ignore[attr-defined]
    names = list(bandit.features)
    rng = random.Random(7)
    variants = [f"variant-{i}" for i in range(args.variants)]
    for i in range(args.updates):
        context = {name: rng.random() for name in rng.sample(names, min(args.nonzero, len(names)))}
        policy.learn(context, variants[i % len(variants)], rng.random())
    rounds = []
    for _ in range(args.rounds):
        started = time.thread_time()
        for _ in range(args.syncs):
            policy.sync()
        rounds.append((time.thread_time() - started) / args.syncs * 1e6)
    return {
        "store": type(stores.counters).__name__,  # type: ignore[attr-defined]
        "features": len(names),
        "variants": args.variants,
        "updates": args.updates,
        "sync_cpu_us": round(statistics.median(rounds), 1),
        "sync_cpu_us_each_round": [round(r, 1) for r in rounds],
    }


if __name__ == "__main__":
    main()
