"""Hot swap under load: promote a new intent model while `serve --workers 2` answers.

Trains two versions on a Banking77 slice, promotes the first, starts the server
(``model_poll_s`` 0.5 s), runs closed-loop /v1/personalize load from 4 threads (a new
connection per request, so both processes get requests), promotes the second version after
``--before`` seconds and keeps the load for ``--after`` seconds. Prints the requests, the
failed ones, and the time from the promotion to the last answer from the old version. With
``--data-dir DIR --version V`` it serves ``DIR`` instead (e.g. the demo's, after ``tailorbot
train --no-promote``) and promotes its candidate ``V`` through the configured gate.

    .venv/bin/python benchmarks/hot_swap.py [--data-dir DIR --version V]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time

import httpx
from _harness import machine, tailorbot_server

from tailorbot.config import Settings
from tailorbot.models import registry
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
            started = time.monotonic()
            try:
                response = client.post("/v1/personalize", json=body)
                ok = response.status_code == 200
                version = response.json()["model_versions"]["intent"] if ok else None
                out.append((time.monotonic(), response.status_code, version, started))
            except httpx.HTTPError as exc:
                out.append((time.monotonic(), repr(exc), None, started))
            i += 1


def swap_under_load(
    data_dir: str, first: str, second: str, before: float, after: float, tolerance: float
) -> list:
    """Serve ``data_dir`` (``first`` current) with 2 processes under load; promote ``second``
    through the gate after ``before`` seconds; keep the load ``after`` seconds more."""
    env = {"TAILORBOT_MODEL_POLL_S": "0.5"}
    with tailorbot_server(workers=2, env=env, data_dir=data_dir) as (url, _, _):
        stop, answers = threading.Event(), []  # type: ignore[var-annotated]
        threads = [threading.Thread(target=load, args=(url, stop, answers, n)) for n in range(4)]
        for thread in threads:
            thread.start()
        time.sleep(before)
        try:
            result = promotion.promote(data_dir, second, AuditGate(), tolerance=tolerance)
            print(f"promoted {second}: {result.metric} {result.candidate[result.metric]:.4f} "
                  f"on {result.compared_on}")  # fmt: skip
        except promotion.PromotionRefused as exc:
            print(f"refused: {exc}")
        answers.append((time.monotonic(), "promoted", None, 0.0))
        time.sleep(after)
        stop.set()
        for thread in threads:
            thread.join()
    return answers


def report(answers: list, first: str, second: str) -> None:
    promoted_at = next(t for t, status, *_ in answers if status == "promoted")
    answers = [a for a in answers if a[1] != "promoted"]
    failed = [a for a in answers if a[1] != 200]
    old_after = [t for t, _, v, _ in answers if v == first and t > promoted_at]
    new = [t for t, _, v, _ in answers if v == second]
    before = [1000 * (t - s) for t, _, _, s in answers if t <= promoted_at]
    swap = [1000 * (t - s) for t, _, _, s in answers if promoted_at < t <= promoted_at + 10]
    print(f"machine: {machine()}")
    print(f"requests {len(answers)}, failed {len(failed)}")
    print(f"last old-version answer {max(old_after, default=promoted_at) - promoted_at:.2f} s "
          f"after the promotion; first new-version answer "
          f"{min(new, default=float('nan')) - promoted_at:.2f} s after it")  # fmt: skip
    print(f"answers after the promotion: {len(old_after)} old, {len(new)} new")
    calm, busy = statistics.median(before), statistics.median(swap)
    print(f"latency before the promotion: median {calm:.1f} ms, max {max(before):.0f} ms; in "
          f"the 10 s after it: median {busy:.1f} ms, max {max(swap):.0f} ms "
          f"(ratio of medians {busy / calm:.2f})")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", type=float, default=5.0)
    parser.add_argument("--after", type=float, default=10.0)
    parser.add_argument("--data-dir", help="A data dir whose candidate --version to promote.")
    parser.add_argument("--version", help="With --data-dir: the candidate (gate as configured).")
    args = parser.parse_args()
    if args.data_dir:
        first = registry.current_version(args.data_dir)
        tolerance = Settings.load(data_dir=args.data_dir).promotion_tolerance
        answers = swap_under_load(args.data_dir, first, args.version, args.before, args.after,
                                  tolerance)  # fmt: skip
        report(answers, first, args.version)
        return
    banking = bundled_dataset("banking77", "train")
    rows = [{"text": t, "intent": i} for t, i in zip(banking.texts, banking.labels, strict=True)]
    rows = rows[::4]
    with tempfile.TemporaryDirectory() as data_dir:
        first = promotion.save_candidate(data_dir, train_intent(rows, search=False, k=3))
        promotion.promote(data_dir, first.version, AuditGate())
        other = train_intent(rows, search=False, k=3, params=IntentParams(C=1.0))
        second = promotion.save_candidate(data_dir, other)
        answers = swap_under_load(data_dir, first.version, second.version, args.before,
                                  args.after, tolerance=1.0)  # fmt: skip
    report(answers, first.version, second.version)


if __name__ == "__main__":
    main()
