"""CPU per record of the embedded (SQLite) event log's append and read, without HTTP: what
the door's append (``POST /v1/events``) and the decision recorder's append of its message
events cost, and what the stream worker's read costs.

The benchmark's synthetic events (events_gen.py), encoded as the door stores them, appended
in batches of ``--batch`` (one append each, as the door and the recorder make them) to a
fresh log of ``--partitions`` partitions; ``--history`` records go in first, uncounted, so
the appends land in a log that already holds some. Then every partition is read back in
reads of ``--read`` records, as the stream worker polls. Process CPU per record, the median
of ``--runs`` fresh logs.

    .venv/bin/python benchmarks/log_append.py --batch 25
    .venv/bin/python benchmarks/log_append.py --batch 100
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import orjson
from _harness import machine
from events_gen import make_events

from tailorbot.log import open_log


def one_run(
    url: str, items: list[tuple[str, bytes]], args: argparse.Namespace
) -> tuple[float, float]:
    """(append, read) CPU µs per record on a fresh log at ``url``."""
    log = open_log(url, args.partitions)
    try:
        history, counted = items[: args.history], items[args.history :]
        for start in range(0, len(history), args.batch):
            log.append(history[start : start + args.batch])
        started = time.process_time()
        for start in range(0, len(counted), args.batch):
            log.append(counted[start : start + args.batch])
        append_us = (time.process_time() - started) / len(counted) * 1e6
        started, read = time.process_time(), 0
        for partition in range(args.partitions):
            offset = 0
            while chunk := log.read(partition, offset, args.read):
                read += len(chunk)
                offset = chunk[-1].offset + 1
        read_us = (time.process_time() - started) / read * 1e6
    finally:
        log.close()
    return append_us, read_us


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=20_000, help="records appended and counted")
    ap.add_argument("--history", type=int, default=5_000, help="records appended first")
    ap.add_argument("--users", type=int, default=5_000)
    ap.add_argument("--batch", type=int, default=25, help="records per append")
    ap.add_argument("--read", type=int, default=500, help="records per read")
    ap.add_argument("--partitions", type=int, default=8)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    if min(args.events, args.batch, args.read, args.partitions, args.runs) < 1 or args.history < 0:
        ap.error("--events, --batch, --read, --partitions and --runs must be at least 1")
    events = make_events(args.history + args.events, args.users)
    items = [(e["user_id"], orjson.dumps(e)) for e in events]
    runs = []
    for _ in range(args.runs):
        with tempfile.TemporaryDirectory(prefix="tb-log-") as tmp:
            runs.append(one_run(f"sqlite:///{Path(tmp) / 'log.db'}", items, args))
    print(
        json.dumps(
            {
                "benchmark": "log_append",
                "machine": machine(),
                "batch": args.batch,
                "records": args.events,
                "record_bytes_median": statistics.median(len(v) for _, v in items),
                "append_cpu_us_per_record": [round(a, 2) for a, _ in runs],
                "append_cpu_us_per_record_median": round(statistics.median(a for a, _ in runs), 2),
                "read_cpu_us_per_record_median": round(statistics.median(r for _, r in runs), 2),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
