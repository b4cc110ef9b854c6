"""CPU seconds a process tree has used, from /proc (Linux): the server's cost per request.

Latency on a shared machine says as much about the neighbours as about the server; the CPU time
the server's processes spent (user + system, children included) divided by the requests they
served is the steadier figure, and its ratio to a reference server measured in the same run
holds across machines.
"""

from __future__ import annotations

import os
from pathlib import Path

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
    parents: dict[int, int] = {}
    cpu: dict[int, float] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            found = _stat(int(entry.name))
            if found is not None:
                parents[int(entry.name)], cpu[int(entry.name)] = found
    totals = {"api": 0.0, "worker": 0.0}
    todo = [(root, "api")]
    while todo:
        pid, role = todo.pop()
        if role == "api" and _is_worker(pid):
            role = "worker"
        totals[role] += cpu.get(pid, 0.0)
        todo.extend((child, role) for child, parent in parents.items() if parent == pid)
    return totals


def _is_worker(pid: int) -> bool:
    try:
        args = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return b"worker" in args and any(b"tailorbot" in a for a in args)
