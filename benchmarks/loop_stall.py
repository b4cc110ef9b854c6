"""/healthz latency while a backend stalls: an in-process uvicorn server whose profile
store's ``get`` sleeps ``--stall`` seconds, ``--concurrent`` personalize requests stuck in
it, and /healthz probed every 20 ms meanwhile.

    .venv/bin/python benchmarks/loop_stall.py [--stall 3] [--concurrent 8]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
from _harness import machine
from personalize import ensure_model

from tailorbot.api.server import EmbeddedServer
from tailorbot.config import Settings


class SleepingStore:
    """The real store, but every ``get`` sleeps first: a backend that hangs."""

    def __init__(self, inner: Any, stall_s: float) -> None:
        self.inner = inner
        self.stall_s = stall_s

    def get(self, *args: Any, **kwargs: Any) -> Any:
        time.sleep(self.stall_s)
        return self.inner.get(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--stall", type=float, default=3.0)
    ap.add_argument("--concurrent", type=int, default=8)
    ap.add_argument("--model-dir", default="/tmp/tailorbot-bench-model")
    args = ap.parse_args()
    ensure_model(Path(args.model_dir))
    data_dir = Path(tempfile.mkdtemp())
    shutil.copytree(Path(args.model_dir) / "models", data_dir / "models")
    settings = Settings.load(data_dir=data_dir, run_worker_in_server=False)
    with EmbeddedServer(settings) as server:
        stores = server.app.state.runtime.stores
        object.__setattr__(stores, "profiles", SleepingStore(stores.profiles, args.stall))
        body = {"user_id": "u1", "session_id": "s1", "message": "my card has not arrived"}

        def personalize() -> None:
            httpx.post(server.url + "/v1/personalize", json=body, timeout=60)

        senders = [threading.Thread(target=personalize) for _ in range(args.concurrent)]
        for sender in senders:
            sender.start()
        time.sleep(0.2)  # the personalize calls are inside the stalled store now
        latencies = []
        with httpx.Client() as client:
            while any(s.is_alive() for s in senders):
                started = time.perf_counter()
                client.get(server.url + "/healthz", timeout=60)
                latencies.append((time.perf_counter() - started) * 1000)
                time.sleep(0.02)
        for sender in senders:
            sender.join()
    print(f"machine: {machine()}")
    print(f"stall {args.stall:g}s, {args.concurrent} personalize requests stalled")
    print(
        f"/healthz: {len(latencies)} probes, p50 {statistics.median(latencies):.1f} ms, "
        f"max {max(latencies):.1f} ms"
    )


if __name__ == "__main__":
    main()
