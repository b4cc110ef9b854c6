"""CPU per decision (or per feedback) of each SQL statement the embedded backends' writes run:
where the decision recorder's and the feedback thread's SQLite time goes.

The instruction counts (decision_stages.py, decision_instructions.py) hardly see SQLite's
page work (``memmove`` of rebalanced B-tree pages, WAL frames written by system calls), so
this script times the statements themselves in CPU time. In the real app (embedded log and
store, users with ``--history``), ``--decisions`` decisions are made with the recorder held;
their writes then go through the recorder's own write, ``--record-batch`` decisions a batch,
with every write transaction's statements timed (``time.process_time_ns`` around each
``execute`` on the files' writer connections). ``--feedback`` times the feedback batches
instead (``DecisionService.feedback_batch``, ``--feedback-batch`` reports a batch, each on a
decision of its own made and written first). Statements are grouped by their SQL with the
``VALUES`` lists and the partition's table number folded; commits are listed with their
median, their 90th percentile, their maximum and the share of the slowest 5 % (WAL
checkpoints, which a commit past 1,000 pages of WAL runs).

    .venv/bin/python benchmarks/sql_writes.py
    .venv/bin/python benchmarks/sql_writes.py --feedback
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import re
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from _harness import add_history_arg, machine

from tailorbot import _sqlite

FOLDS = (
    (re.compile(r"\((?:\?|\s|,)*\)(?:\s*,\s*\((?:\?|\s|,)*\))*"), "(...)"),  # VALUES lists
    (re.compile(r"\brecords_\d+\b"), "records_<p>"),  # the log's table of one partition
)


def statement_kind(sql: str) -> str:
    """``sql`` with what varies between batches folded (see FOLDS), on one line.

    >>> statement_kind("INSERT INTO records_3 VALUES (?,?,?),(?,?,?)")
    'INSERT INTO records_<p> VALUES (...)'
    """
    for pattern, folded in FOLDS:
        sql = pattern.sub(folded, sql)
    return " ".join(sql.split())


class TimedConnection:
    """A writer connection whose ``execute``/``executemany`` CPU time is kept by statement."""

    def __init__(self, conn: Any, spent: dict[str, list[int]]) -> None:
        self._conn = conn
        self._spent = spent

    def _timed(self, method: str, sql: str, *args: Any) -> Any:
        started = time.process_time_ns()
        result = getattr(self._conn, method)(sql, *args)
        self._spent[statement_kind(sql)].append(time.process_time_ns() - started)
        return result

    def execute(self, sql: str, *args: Any) -> Any:
        return self._timed("execute", sql, *args)

    def executemany(self, sql: str, *args: Any) -> Any:
        return self._timed("executemany", sql, *args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)


@contextlib.contextmanager
def timing_writes(spent: dict[str, list[int]]) -> Iterator[None]:
    """Every ``SqliteFile.write`` transaction's statements timed into ``spent``, its
    ``BEGIN`` and ``COMMIT`` included (they run on the writer the transaction holds)."""
    original = _sqlite.SqliteFile.write

    @contextlib.contextmanager
    def write(self: Any, then: Any = None) -> Iterator[Any]:
        writer = self._writer
        self._writer = TimedConnection(writer, spent)
        try:
            with original(self, then) as conn:
                yield conn
        finally:
            self._writer = writer

    _sqlite.SqliteFile.write = write  # type: ignore[method-assign]
    try:
        yield
    finally:
        _sqlite.SqliteFile.write = original  # type: ignore[method-assign]


async def measure(args: argparse.Namespace) -> tuple[dict[str, list[int]], int, float]:
    """(CPU ns of each statement kind, the decisions or feedbacks written, CPU µs of each)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from decision_profile import answers, applied, decided, started_app
    from personalize import ensure_model, request_bodies

    from tailorbot.services.decisions.schemas import FeedbackRequest, PersonalizeRequest

    ensure_model(args.model_dir)
    bodies = request_bodies(args.users, args.warmup + args.decisions)
    history = request_bodies(args.users, args.history)
    spent: dict[str, list[int]] = defaultdict(list)
    async with started_app(
        args.model_dir, decision_threads=0, history=history, reported=args.reported
    ) as (app, d):
        recorder = d.recorder
        if args.feedback:
            stream = decided(await answers(app, bodies))
            if not recorder.flush(timeout_s=600):
                raise RuntimeError("the decision recorder did not flush")
            reports = [
                FeedbackRequest.model_validate_json(stream.next_body(i)) for i in range(len(bodies))
            ]
            size = args.feedback_batch
            for start in range(0, args.warmup, size):
                applied(d.feedback_batch(reports[start : min(start + size, args.warmup)]))
            counted = reports[args.warmup :]
            with timing_writes(spent):
                cpu = time.process_time()
                for start in range(0, len(counted), size):
                    applied(d.feedback_batch(counted[start : start + size]))
                cpu = time.process_time() - cpu
            return spent, len(counted), cpu / len(counted) * 1e6
        requests = [PersonalizeRequest.model_validate_json(b) for b in bodies]
        for request in requests[: args.warmup]:
            d.personalize_payload(request)
        if not recorder.flush(timeout_s=600):
            raise RuntimeError("the decision recorder did not flush")
        recorder.batch, recorder.flush_s = sys.maxsize, 3600.0  # held: written below
        for request in requests[args.warmup :]:
            d.personalize_payload(request)
        recorder.batch = args.record_batch
        with recorder._cond:  # the queued decisions in batches, as the writer takes them
            batches = []
            while recorder._queue:
                batches.append(recorder._take())
        with timing_writes(spent):
            cpu = time.process_time()
            for batch in batches:
                recorder._write(batch)
            cpu = time.process_time() - cpu
        with recorder._cond:  # written here, not by the writer thread
            for batch in batches:
                recorder._queued_ids -= batch.ids
            recorder._cond.notify_all()
        return spent, args.decisions, cpu / args.decisions * 1e6


def report(spent: dict[str, list[int]], count: int, cpu_us: float, args: argparse.Namespace) -> str:
    unit = "feedback" if args.feedback else "decision"
    total = sum(sum(times) for times in spent.values()) / count / 1000
    lines = [
        f"machine: {machine()}",
        f"{count:,} {unit}s written: {cpu_us:.1f} CPU µs a {unit} in all, {total:.1f} in the "
        f"statements below (µs a {unit}, statements run, SQL):",
    ]
    for kind, times in sorted(spent.items(), key=lambda item: -sum(item[1])):
        lines.append(f"  {sum(times) / count / 1000:8.2f} {len(times):6d}  {kind[:110]}")
    commits = sorted(spent.get("COMMIT", []))
    if commits:
        slowest = commits[int(len(commits) * 0.95) :]
        lines.append(
            f"commits: median {statistics.median(commits) / 1000:.1f} µs, 90th percentile "
            f"{commits[int(len(commits) * 0.9)] / 1000:.1f} µs, max {commits[-1] / 1000:.1f} µs;"
            f" the slowest 5 % {sum(slowest) / sum(commits):.0%} of their time"
        )
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--decisions", type=int, default=2000, help="decisions (or feedbacks) timed")
    ap.add_argument("--warmup", type=int, default=300, help="made and written before, untimed")
    ap.add_argument("--users", type=int, default=5000)
    ap.add_argument("--record-batch", type=int, default=25, help="decisions a recorder write")
    ap.add_argument("--feedback", action="store_true", help="time the feedback batches instead")
    ap.add_argument("--feedback-batch", type=int, default=7, help="reports a feedback batch")
    ap.add_argument("--model-dir", type=Path, default=Path("/tmp/tailorbot-bench-model"))
    add_history_arg(ap)
    args = ap.parse_args()
    if min(args.decisions, args.record_batch, args.feedback_batch, args.users) < 1:
        ap.error("--decisions, --record-batch, --feedback-batch and --users must be at least 1")
    if args.warmup < 0:
        ap.error("--warmup must be at least 0")
    print(report(*asyncio.run(measure(args)), args))


if __name__ == "__main__":
    main()
