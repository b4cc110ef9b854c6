"""Cold start: seconds from spawning `tailorbot serve` to its first answers.

Spawns `tailorbot serve` on a data directory holding a trained intent model (trained once
into --model-dir), polls ``/healthz`` every 10 ms, then sends one ``/v1/personalize``; reports
the median of ``--runs`` starts of each: time to the first 200 from /healthz (the process
can be probed) and to the first personalized answer (the models are loaded). Also the time
``import tailorbot.api.app`` takes in a fresh interpreter.

    .venv/bin/python benchmarks/cold_start.py --runs 3
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from _harness import machine
from personalize import ensure_model

from tailorbot._ports import held_port


def one_start(model_dir: Path) -> dict[str, float]:
    holder = held_port()  # the port kept until the server listens on it
    port = holder.getsockname()[1]
    cli = str(Path(sys.executable).parent / "tailorbot")
    with tempfile.TemporaryDirectory(prefix="tb-cold-") as data_dir:
        shutil.copytree(model_dir / "models", Path(data_dir) / "models")
        started = time.perf_counter()
        proc = subprocess.Popen(
            [cli, "serve", "--port", str(port), "--data-dir", data_dir, "--log-level", "warning"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            with holder:  # released once the server listens (or failed to)
                healthy = _first_ok(lambda: httpx.get(url + "/healthz", timeout=1), started, proc)
            body = {"user_id": "u1", "session_id": "s1", "message": "my card has not arrived"}
            answered = _first_ok(
                lambda: httpx.post(url + "/v1/personalize", json=body, timeout=30), started, proc
            )
        finally:
            proc.terminate()
            proc.wait(timeout=15)
    return {"healthz_s": healthy, "first_decision_s": answered}


def _first_ok(call: object, started: float, proc: subprocess.Popen[bytes]) -> float:
    deadline = started + 120
    while time.perf_counter() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"tailorbot serve exited with {proc.returncode}")
        try:
            if call().status_code == 200:  # type: ignore[operator]
                return round(time.perf_counter() - started, 3)
        except httpx.HTTPError:
            pass
        time.sleep(0.01)
    raise RuntimeError("no answer within 120 s")


def import_seconds() -> float:
    code = "import time; t = time.perf_counter(); import tailorbot.api.app; "
    code += "print(time.perf_counter() - t)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return round(float(out.stdout.strip()), 3)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--model-dir", default="/tmp/tailorbot-bench-model")
    args = ap.parse_args()
    ensure_model(Path(args.model_dir))
    starts = [one_start(Path(args.model_dir)) for _ in range(args.runs)]
    imports = [import_seconds() for _ in range(args.runs)]
    print(
        json.dumps(
            {
                "benchmark": "cold_start",
                "machine": machine(),
                "runs": args.runs,
                "import_api_app_s": statistics.median(imports),
                "healthz_s": statistics.median(s["healthz_s"] for s in starts),
                "first_decision_s": statistics.median(s["first_decision_s"] for s in starts),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
