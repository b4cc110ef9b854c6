"""What OpenTelemetry tracing costs a `POST /v1/personalize`, measured in process.

Two apps over copies of one data directory (the Banking77 model of personalize.py): one
without tracing (the default: no middleware, nothing wrapped), one with tracing on as in
production (a BatchSpanProcessor; the exporter drops the spans, so the figure is the cost on
the request path, not a collector's network). Requests go through the whole ASGI stack
(Starlette's TestClient, no socket), one at a time, alternating rounds of each app so that
drift of the machine hits both alike.

    .venv/bin/python benchmarks/tracing_overhead.py --requests 2000 --rounds 5
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from _harness import machine
from fastapi.testclient import TestClient
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from personalize import ensure_model

from tailorbot.api.app import create_app
from tailorbot.config import Settings
from tailorbot.models.intent import default_dataset
from tailorbot.telemetry.tracing import Tracing


class DroppingExporter(SpanExporter):
    """Counts the spans it is handed and drops them."""

    def __init__(self) -> None:
        self.spans = 0

    def export(self, spans: Any) -> SpanExportResult:
        self.spans += len(spans)
        return SpanExportResult.SUCCESS


def timed(client: TestClient, bodies: list[dict], start: int, n: int) -> list[float]:
    seconds = []
    for i in range(start, start + n):
        t0 = time.perf_counter()
        response = client.post("/v1/personalize", json=bodies[i % len(bodies)])
        seconds.append(time.perf_counter() - t0)
        if response.status_code != 200:
            raise SystemExit(f"personalize answered {response.status_code}: {response.text}")
    return seconds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--requests", type=int, default=2000, help="per app and round")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--model-dir", default="/tmp/tailorbot-bench-model")
    args = ap.parse_args()
    ensure_model(Path(args.model_dir))
    texts = list(default_dataset("test").texts)
    bodies = [
        {"user_id": f"bench-{i % 500}", "session_id": f"s-{i % 500}", "message": texts[i]}
        for i in range(len(texts))
    ]
    exporter = DroppingExporter()
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(exporter))
    tracing = Tracing(provider)
    results: dict[str, list[float]] = {"off": [], "on": []}
    with tempfile.TemporaryDirectory() as tmp:
        clients = {}
        for name in results:
            data_dir = Path(tmp) / name
            shutil.copytree(args.model_dir, data_dir)
            settings = Settings.load(data_dir=data_dir, seed=1)
            app = create_app(settings, tracing=tracing if name == "on" else None)
            clients[name] = TestClient(app).__enter__()
        for client in clients.values():  # warm-up
            timed(client, bodies, 0, 200)
        for r in range(args.rounds):
            for name, client in clients.items():
                results[name] += timed(client, bodies, r * args.requests, args.requests)
        for client in clients.values():
            client.__exit__(None, None, None)
    provider.shutdown()
    report: dict[str, Any] = {"machine": machine(), "requests_per_app": len(results["on"])}
    for name, seconds in results.items():
        ordered = sorted(seconds)
        report[name] = {
            "mean_us": round(statistics.fmean(seconds) * 1e6, 1),
            "p50_us": round(ordered[len(ordered) // 2] * 1e6, 1),
            "p99_us": round(ordered[int(len(ordered) * 0.99)] * 1e6, 1),
        }
    report["overhead_mean_us"] = round(report["on"]["mean_us"] - report["off"]["mean_us"], 1)
    report["overhead_p50_us"] = round(report["on"]["p50_us"] - report["off"]["p50_us"], 1)
    report["spans_exported"] = exporter.spans
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
