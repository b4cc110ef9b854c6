"""Instructions counted by valgrind's callgrind, switched on, zeroed and dumped by the counted
process itself (decision_instructions.py, decision_stages.py).

The counted script runs as a child under ``valgrind --tool=callgrind --instr-atstart=no``:
counting stays off through its start-up. When it reaches a point to count from, to zero or
to dump, it prints the ``callgrind_control`` option (``--instr=on``, ``--zero``,
``--dump=NAME``) with :func:`control`; the parent applies it to the child and answers, and
the child goes on. Any other line, or the child's end, ends the dialogue.
"""

from __future__ import annotations

import math
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

OPTIONS = ("--instr=", "--zero", "--dump=")


def run_counted(child_args: list[str], out_dir: str) -> str:
    """Run ``python <child_args>`` under callgrind (its dumps in ``out_dir``, named
    ``callgrind.out.N``), applying each option it prints; returns valgrind's log. Exits
    with the log's end when the child fails."""
    command = [
        "valgrind", "--tool=callgrind", "--instr-atstart=no",
        f"--callgrind-out-file={out_dir}/callgrind.out", sys.executable, *child_args,
    ]  # fmt: skip
    # one hash seed: set and dict orders (and so the instructions) repeat run to run
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    with open(f"{out_dir}/stderr", "w+") as errors:
        child = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=errors,
            text=True, env=env,
        )  # fmt: skip
        if child.stdin is None or child.stdout is None:
            raise RuntimeError("no pipes to the child")
        for line in child.stdout:
            option = line.strip()
            if not option.startswith(OPTIONS):
                break
            subprocess.run(
                ["callgrind_control", option, str(child.pid)],
                capture_output=True, check=True, timeout=600,
            )  # fmt: skip
            child.stdin.write("go\n")
            child.stdin.flush()
        child.stdin.close()
        child.wait(timeout=1800)
        errors.seek(0)
        log = errors.read()
    if child.returncode != 0:
        raise SystemExit(f"the counted run failed (exit {child.returncode}):\n{log[-3000:]}")
    return log


def dumped_counts(out_dir: str, prefix: str) -> dict[int, int]:
    """The instructions of each dump the child named ``<prefix><n>`` (``--dump=<prefix><n>``
    with :func:`control`), by ``n``: each dump file holds the count since the last zeroing."""
    counts: dict[int, int] = {}
    for path in Path(out_dir).glob("callgrind.out.*"):
        text = path.read_text()
        trigger = re.search(rf"^desc: Trigger: dump {re.escape(prefix)}(\d+)$", text, re.M)
        total = re.search(r"^(?:summary|totals): (\d+)", text, re.MULTILINE)
        if trigger and total:
            counts[int(trigger.group(1))] = int(total.group(1))
    return counts


def control(option: str) -> None:
    """In the counted child: have the parent apply ``option`` now, and wait until it has."""
    print(option, flush=True)
    sys.stdin.readline()


def quiet_background(decider: Any) -> None:
    """In the counted child, before counting: stop what a server does once a second beside
    its requests (the live models' refresh, the policies' statistics sync). Under valgrind a
    second holds a few requests instead of hundreds, so their share of a counted request
    was inflated many times over, and moved with the host's load (decision_instructions.py
    read 1,687 k a request for one code while another count ran beside it, and 1,732 k
    while two did)."""
    decider._live._refresh.stop()
    for policy in (decider.models.policy, decider.models.control):
        if policy is not None:
            policy.sync_s = math.inf
