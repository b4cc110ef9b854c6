"""Hot swap under load: promote a new intent model while `serve --workers 2` answers.

Trains two versions on a Banking77 slice, promotes the first, starts the server
(``model_poll_s`` 0.5 s), runs closed-loop /v1/personalize load from 4 threads (a new
connection per request, so both processes get requests), promotes the second version after
``--before`` seconds and keeps the load for ``--after`` seconds. Prints the requests, the
failed ones, and the time from the promotion to the last answer from the old version.

    .venv/bin/python benchmarks/hot_swap.py
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time

import httpx
from _harness import machine, tailorbot_server

from tailorbot.models.intent import bundled_dataset
from tailorbot.models.pipeline import promotion
from tailorbot.models.pipeline.audit import AuditGate
from tailorbot.models.pipeline.crossval import IntentParams
from tailorbot.models.pipeline.trainer import train_intent


def load(url: str, stop: threading.Event, out: list, n: int) -> None:
    limits = httpx.Limits(max_keepalive_connections=0)
    with httpx.Client(base_url=url, timeout=30, limits=limits) as client:
        i = 0
        while not stop.is_set():
            body = {"user_id": f"u{n}-{i % 11}", "session_id": f"s{n}", "message": "my card?"}
            try:
                response = client.post("/v1/personalize", json=body)
                ok = response.status_code == 200
                version = response.json()["model_versions"]["intent"] if ok else None
                out.append((time.monotonic(), response.status_code, version))
            except httpx.HTTPError as exc:
                out.append((time.monotonic(), repr(exc), None))
            i += 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", type=float, default=5.0)
    parser.add_argument("--after", type=float, default=10.0)
    args = parser.parse_args()
    banking = bundled_dataset("banking77", "train")
    rows = [{"text": t, "intent": i} for t, i in zip(banking.texts, banking.labels, strict=True)]
    rows = rows[::4]
    gate = AuditGate()
    with tempfile.TemporaryDirectory() as data_dir:
        first = promotion.save_candidate(data_dir, train_intent(rows, search=False, k=3))
        promotion.promote(data_dir, first.version, gate)
        other = train_intent(rows, search=False, k=3, params=IntentParams(C=1.0))
        second = promotion.save_candidate(data_dir, other)
        env = {"TAILORBOT_MODEL_POLL_S": "0.5"}
        with tailorbot_server(workers=2, env=env, data_dir=data_dir) as (url, _, _):
            stop, answers = threading.Event(), []  # type: ignore[var-annotated]
            threads = [
                threading.Thread(target=load, args=(url, stop, answers, n)) for n in range(4)
            ]
            for thread in threads:
                thread.start()
            time.sleep(args.before)
            promotion.promote(data_dir, second.version, gate, tolerance=1.0)
            promoted_at = time.monotonic()
            time.sleep(args.after)
            stop.set()
            for thread in threads:
                thread.join()
    failed = [a for a in answers if a[1] != 200]
    old_after = [t for t, _, v in answers if v == first.version and t > promoted_at]
    new = [t for t, _, v in answers if v == second.version]
    print(f"machine: {machine()}")
    print(f"requests {len(answers)}, failed {len(failed)}")
    print(f"last old-version answer {max(old_after, default=promoted_at) - promoted_at:.2f} s "
          f"after the promotion; first new-version answer "
          f"{min(new, default=float('nan')) - promoted_at:.2f} s after it")  # fmt: skip
    print(f"answers after the promotion: {len(old_after)} old, {len(new)} new")


if __name__ == "__main__":
    main()
