"""CPU seconds a process tree has used, from /proc (Linux): the server's cost per request.

Latency on a shared machine says as much about the neighbours as about the server; the CPU time
the server's processes spent (user + system, children included) divided by the requests they
served is the steadier figure, and its ratio to a reference server measured in the same run
holds across machines.
"""

from __future__ import annotations

import argparse
import contextlib
import os
from pathlib import Path

from _harness import redis_server

TICKS = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> tuple[int, float] | None:
    """(parent pid, CPU seconds) of one process, or None once it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2 :].split()  # after the command name, which may hold spaces
    ppid, utime, stime = int(fields[1]), int(fields[11]), int(fields[12])
    return ppid, (utime + stime) / TICKS


def tree_cpu_seconds(root: int) -> dict[str, float]:
    """CPU seconds of ``root`` and its live descendants: ``api`` (the server processes) and
    ``worker`` (a `tailorbot worker` child of `tailorbot serve`, and its descendants)."""
    processes = _processes()
    totals = {"api": 0.0, "worker": 0.0}
    for pid, role in _roles(root, processes):
        totals[role] += processes[pid][1] if pid in processes else 0.0
    return totals


def tree_context_switches(root: int) -> dict[str, int]:
    """Context switches (voluntary and not, every thread's) of ``root`` and its live
    descendants, by role as :func:`tree_cpu_seconds`: each hand-over of the interpreter lock
    between two threads of a process that both want it costs one or two."""
    totals = {"api": 0, "worker": 0}
    for pid, role in _roles(root, _processes()):
        for status in Path(f"/proc/{pid}/task").glob("*/status"):
            try:
                text = status.read_text()
            except OSError:  # the thread ended meanwhile
                continue
            totals[role] += sum(
                int(line.split()[1]) for line in text.splitlines() if "ctxt_switches" in line
            )
    return totals


def _processes() -> dict[int, tuple[int, float]]:
    """(parent pid, CPU seconds) of every live process, by pid."""
    found = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (stat := _stat(int(entry.name))) is not None:
            found[int(entry.name)] = stat
    return found


def _roles(root: int, processes: dict[int, tuple[int, float]]) -> list[tuple[int, str]]:
    """``root`` and its descendants, each with its role: ``worker`` for a `tailorbot
    worker` process and its descendants, ``api`` for the rest."""
    out = []
    todo = [(root, "api")]
    while todo:
        pid, role = todo.pop()
        if role == "api" and _is_worker(pid):
            role = "worker"
        out.append((pid, role))
        todo.extend((child, role) for child, (parent, _) in processes.items() if parent == pid)
    return out


def named_cpu_seconds(name: str) -> tuple[float, int]:
    """CPU seconds of every live process whose command name is ``name`` (e.g. the local
    ``redis-server`` a benchmark's backends use), and how many there were."""
    total, count = 0.0, 0
    for pid, (_, cpu) in _processes().items():
        try:
            comm = Path(f"/proc/{pid}/comm").read_text().strip()
        except OSError:  # gone meanwhile
            continue
        if comm == name:
            total += cpu
            count += 1
    return total, count


def redis_command_usec(url: str) -> dict[str, float]:
    """Microseconds the Redis server at ``url`` has spent in each command since its start
    (``INFO commandstats``). A script's own commands count apart and again inside the
    time of its ``evalsha``."""
    client = redis_server(url)
    try:
        stats = client.info("commandstats")
    finally:
        client.close()
    return {name.removeprefix("cmdstat_"): float(v["usec"]) for name, v in stats.items()}


def top_commands(
    before: dict[str, float], after: dict[str, float], requests: int, n: int = 6
) -> dict[str, float]:
    """The ``n`` commands that took the most of Redis's time between two
    :func:`redis_command_usec` readings, in microseconds per request."""
    spent = {name: usec - before.get(name, 0.0) for name, usec in after.items()}
    best = sorted(spent.items(), key=lambda item: -item[1])[:n]
    return {name: round(usec / max(1, requests), 1) for name, usec in best if usec > 0}


def machine_jiffies(core: int | None = None) -> tuple[int, int]:
    """(busy, all) clock ticks since boot of every core, or of ``core``, from /proc/stat:
    between two readings, busy / all is the share that was working (steal counts as busy:
    the cores were not ours to use; guest time is already in user)."""
    label = "cpu" if core is None else f"cpu{core}"
    for line in Path("/proc/stat").read_text().splitlines():
        name, *values = line.split()
        if name == label:
            fields = [int(v) for v in values[:8]]
            idle = fields[3] + fields[4]  # idle + iowait
            return sum(fields) - idle, sum(fields)
    raise ValueError(f"no {label} line in /proc/stat")


def busy_share(before: tuple[int, int], after: tuple[int, int]) -> float:
    """The share of the ticks between two :func:`machine_jiffies` readings that were busy."""
    return (after[0] - before[0]) / max(1, after[1] - before[1])


def pin_tree(root: int, api_cores: set[int], worker_cores: set[int]) -> dict[str, int]:
    """Pin every thread of ``root``'s live process tree to CPU cores: the server processes
    to ``api_cores``, the stream worker's processes to ``worker_cores``. Threads and
    processes started later inherit their creator's cores. Returns the threads pinned per
    role."""
    pinned = {"api": 0, "worker": 0}
    for pid, role in _roles(root, _processes()):
        cores = api_cores if role == "api" else worker_cores
        with contextlib.suppress(FileNotFoundError):
            for task in Path(f"/proc/{pid}/task").iterdir():
                with contextlib.suppress(ProcessLookupError):  # a thread that just ended
                    os.sched_setaffinity(int(task.name), cores)
                    pinned[role] += 1
    return pinned


def _is_worker(pid: int) -> bool:
    try:
        args = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return b"worker" in args and any(b"tailorbot" in a for a in args)


def split_cores() -> tuple[int, set[int]]:
    """With --pin: the server's core (the first this process may use) and the others, for
    the load generator and the stream worker."""
    allowed = os.sched_getaffinity(0)
    return min(allowed), allowed - {min(allowed)}


def pin_one_core(ap: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """The set-up of the benchmarks that always measure as ``--pin`` does: the server on
    the first usable core (``args.server_core``), this process (the load generator) on the
    others (``args.other_cores``); a usage error with fewer than 2 cores."""
    args.server_core, args.other_cores = split_cores()
    args.pin = True
    if not args.other_cores:
        ap.error("needs at least 2 usable cores (the server on one, the generator on the rest)")
    os.sched_setaffinity(0, args.other_cores)
