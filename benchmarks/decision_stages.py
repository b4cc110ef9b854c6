"""Instructions per decision in each of its stages, counted by valgrind: where the decision's
work goes, in a figure the machine's load cannot move.

decision_profile.py ``--stage-cpu`` times the stages inside the decisions (what they cost
there, cache misses included, on a machine whose speed swings between runs);
decision_instructions.py counts a whole request. This script does what neither does: the
instructions of each stage. It makes ``--warmup`` decisions with the stage methods wrapped
to keep their arguments, then, under ``valgrind --tool=callgrind`` with counting on, calls
each stage alone over the arguments kept from the last ``--requests`` decisions, one stage
after the other, and dumps callgrind's count after each. A stage's instructions do not
depend on what ran before it (cache misses are not instructions), so a stage in a loop of
its own counts what it counts inside a decision; the whole decision is counted the same
way, and what the stages leave out of it is reported as "the rest".

Stages the service runs one after the other are at the left; the indented ones are parts
of the stage above them. A part with a compiled loop and a Python twin is listed twice; the
one this install does not run reads "not run". The stage replays run on requests decided
before, so the statistics' memo holds every intent's evidence they need; ``an intent's
evidence, not remembered`` counts it computed (an empty memo in its place for each call),
as a decision computes it after a rebuild of the statistics dropped it. The recorder's
writes (``recorder writes``: the batches of message events and decision records the
recorder thread writes, ``--record-batch`` a batch) are done by another thread in a server;
they are counted after the whole decisions, as one flush of what those decisions queued.
Nothing else runs while counting: the background refresh of the shared statistics (once a
second in a server) is stopped first.

The users have history first (``--history``, see decision_profile.give_history); figures
in docs/benchmarks.md before its nineteenth session are of users without (``--history 0``).

    .venv/bin/python benchmarks/decision_stages.py --requests 300
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import importlib
import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _callgrind import control, dumped_counts, quiet_background, run_counted
from _harness import Patches, add_history_arg

# (label, where the method is, its name). Where: the decision service's attribute path
# ("d.models.intent"), or a module or a class ("tailorbot.features.view",
# "tailorbot.models.recommend.hybrid:HybridRecommender"): a method wrapped on its class
# keeps ``self`` with its arguments, and a module's function is wrapped where its callers
# look it up. Indented labels are parts of the stage above them.
SERVICE = "tailorbot.services.decisions.service"
HYBRID = "tailorbot.models.recommend.hybrid"
POLICY = "tailorbot.services.decisions.policy"
BANDIT = "tailorbot.models.bandit.base"
# An intent's evidence as a decision computes it when the statistics' memo does not hold it
# (replayed with an empty memo in its place for each call): the replays run on requests decided
# before, so every other count here has the memo warm, which a server's has only until a
# rebuild drops the intents whose counters changed.
MISSED = "    an intent's evidence, not remembered"
STAGES: tuple[tuple[str, str, str], ...] = (
    ("intent", "d.models.intent", "predict_one"),
    ("  typo correction", "tailorbot.models.intent.spelling:TypoCorrector", "expand"),
    ("  TF-IDF n-grams, scores", "tailorbot.models.intent.serving:SingleTextScorer", "scores"),
    ("  language detection", "d.models.intent.detector", "detect"),
    ("  static embedding, scores", "d.models.intent.default_model", "_add_dense_scores"),
    ("read the user", "d", "_read_user"),
    ("  the store's read", "tailorbot.store.base:Stores", "profile_and_record"),
    ("  the feature view", SERVICE, "feature_view"),
    ("conversation rules", "d.conversation", "apply"),
    ("A/B arm", "d.experiment", "arm_for"),
    ("recommend", "d", "_articles"),
    ("  the user's context", f"{HYBRID}:UserContext", "from_view"),
    ("  collaborative evidence", "tailorbot.models.recommend.evidence:Evidence", "gather"),
    (MISSED, "tailorbot.models.recommend.collaborative:CollaborativeStats", "evidence"),
    ("  text match (BM25)", "tailorbot.models.recommend.text:BM25Index", "match"),
    ("  candidates", f"{HYBRID}:HybridRecommender", "_candidates"),
    ("  scoring the candidates, compiled", "tailorbot._native", "score_articles"),
    ("  scoring the candidates, in Python", f"{HYBRID}:HybridRecommender", "_weighted"),
    ("  the message's terms and words", HYBRID, "terms_and_words"),
    ("  the reasons", "tailorbot.models.recommend.reasons:ReasonWriter", "reasons"),
    ("template", "d", "_template"),
    ("context, bandit, reply, record built", "d", "_decide"),
    ("  the context", SERVICE, "decision_context"),
    ("  the bandit", "d", "_variant"),
    ("    the customer's memory of each variant", POLICY, "action_features"),
    ("    the choice among the arms", "tailorbot.models.bandit.linucb:LinUCB", "select"),
    ("      in one compiled call", "tailorbot._native", "ucb_select"),
    ("      their rows and moments, in Python", f"{BANDIT}:ContextualBandit", "_posterior_moments"),
    ("  rendering", "d.models.composer", "render"),
    ("  the decision record", SERVICE, "decision_record"),
    ("message event, through the door, queued", "d", "_record"),
    ("  the event as checked values", SERVICE, "checked_message"),
    ("  the door's redaction", "tailorbot.events.redact:Redactor", "redact_event"),
    ("health metrics", "d", "_observe"),
    ("articles cited", SERVICE, "cited"),
    ("the answer's payload", SERVICE, "personalize_payload"),
)
WHOLE = "the whole decision"
WRITES = "recorder writes"


def count_stages(args: argparse.Namespace) -> dict[str, int]:
    """Instructions of each stage over ``--requests`` calls: the child, under callgrind,
    dumps the count after each stage as ``stage<n>`` (see _callgrind.py); each dump file
    holds that stage's count."""
    with tempfile.TemporaryDirectory(prefix="tb-stages-") as tmp:
        log = run_counted(
            [
                __file__, "--child", "--requests", str(args.requests),
                "--warmup", str(args.warmup), "--users", str(args.users),
                "--record-batch", str(args.record_batch), "--model-dir", str(args.model_dir),
                "--history", str(args.history), "--reported", str(args.reported),
            ],
            tmp,
        )  # fmt: skip
        labels = [label for label, _, _ in STAGES] + [WHOLE, WRITES]
        counts = {labels[n]: total for n, total in dumped_counts(tmp, "stage").items()}
        missing = [label for label in (WHOLE, WRITES) if label not in counts]
        if missing:
            raise SystemExit(f"no count for {missing}:\n{log[-3000:]}")
        return counts


def child(args: argparse.Namespace) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from personalize import ensure_model

    ensure_model(args.model_dir)
    asyncio.run(_stages(args))


async def _stages(args: argparse.Namespace) -> None:
    from decision_profile import started_app
    from personalize import request_bodies

    from tailorbot.services.decisions.schemas import PersonalizeRequest

    bodies = request_bodies(args.users, args.warmup + args.requests)
    requests = [PersonalizeRequest.model_validate_json(b) for b in bodies]
    history = request_bodies(args.users, args.history)
    async with started_app(
        args.model_dir, decision_threads=0, history=history, reported=args.reported
    ) as (_, d):
        recorder = d.recorder
        recorder.batch, recorder.flush_s = args.record_batch, 3600.0  # batches by size alone
        # per stage: (the decision it came in, positional arguments, named ones) per call
        kept: dict[str, list[tuple[int, tuple[Any, ...], dict[str, Any]]]] = {}
        patches = Patches()
        current = [0]  # the decision being made
        for label, where, name in STAGES:
            kept[label] = calls = []
            try:
                owner = _owner(where, d)
            except ImportError:  # the compiled loops, where they were not built
                continue
            except AttributeError:  # a model without a language router (an older model dir)
                continue
            if not hasattr(owner, name):  # an older build of them, or an older tree
                continue
            patches.wrap(owner, name, lambda fn, calls=calls: _keeping(fn, calls, current))
        for n, request in enumerate(requests):
            current[0] = n
            d.personalize_payload(request)
        patches.undo()  # counted unwrapped
        if not recorder.flush(timeout_s=600):
            raise RuntimeError("the decision recorder did not flush")
        replays = []  # (stage number, method, its calls)
        first = len(requests) - args.requests  # the calls of the last --requests decisions
        for n, (label, where, name) in enumerate(STAGES):
            calls = [(p, k) for i, p, k in kept[label] if i >= first]
            if calls:  # else not run here (the compiled path or its Python twin)
                replays.append((n, getattr(_owner(where, d), name), calls))
        last = requests[-args.requests :]
        # Counted work is the decisions' own: no background refresh (quiet_background), and
        # no write by the recorder thread until the flushes counted as its writes (a batch
        # filled while a stage runs would count in that stage).
        quiet_background(d)
        recorder.batch = sys.maxsize
        # What the benchmark keeps (every stage's arguments of every decision) out of the
        # collector's reach, as a server freezes its start-up heap (_heap.py): else a full
        # collection falling in one stage's loop (some 14 M instructions here) was counted
        # as that stage's, a different stage from run to run.
        gc.collect()
        gc.freeze()
        control("--instr=on")
        for n, method, calls in replays:
            gc.collect()  # each stage from the same collector state: its collections its own
            control("--zero")
            missed = STAGES[n][0] == MISSED
            for positional, named in calls:
                if missed:  # an empty memo for the call, the warm one kept for the rest
                    stats = positional[0]  # evidence's self
                    memo, stats._memo = stats._memo, {}
                    method(*positional, **named)
                    stats._memo = memo
                else:
                    method(*positional, **named)
            control(f"--dump=stage{n}")
        recorder.batch = args.record_batch
        if not recorder.flush(timeout_s=600):  # what the stages queued: not counted
            raise RuntimeError("the decision recorder did not flush")
        recorder.batch = sys.maxsize
        control("--zero")
        for request in last:
            d.personalize_payload(request)
        control(f"--dump=stage{len(STAGES)}")
        recorder.batch = args.record_batch
        control("--zero")
        if not recorder.flush(timeout_s=600):
            raise RuntimeError("the decision recorder did not flush")
        control(f"--dump=stage{len(STAGES) + 1}")


def _owner(where: str, d: Any) -> Any:
    """What ``where`` names (see STAGES)."""
    if where == "d" or where.startswith("d."):
        owner = d
        for name in where.split(".")[1:]:
            owner = getattr(owner, name)
        return owner
    module, _, cls = where.partition(":")
    found = importlib.import_module(module)
    return getattr(found, cls) if cls else found


def _keeping(
    method: Callable[..., Any], calls: list[Any], current: list[int]
) -> Callable[..., Any]:
    def kept(*positional: Any, **named: Any) -> Any:
        calls.append((current[0], positional, named))
        return method(*positional, **named)

    return kept


def report(counts: dict[str, int], requests: int) -> str:
    whole = counts[WHOLE]
    top = sum(n for label, n in counts.items() if label in _TOP)
    lines = [f"instructions per decision ({requests} counted, each stage in a loop of its own):"]
    for label in [label for label, _, _ in STAGES] + [WHOLE, WRITES]:
        n = counts.get(label)
        if n is None:
            lines.append(f"  {label:<46} {'not run':>11}")
            continue
        lines.append(f"  {label:<46} {n / requests / 1000:9.1f} k  {n / whole:6.1%}")
        if label == STAGES[-1][0]:
            rest = whole - top
            lines.append(f"  {'the rest':<46} {rest / requests / 1000:9.1f} k  {rest / whole:6.1%}")
    return "\n".join(lines)


_TOP = {label for label, _, _ in STAGES if not label.startswith(" ")}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=300, help="decisions counted per stage")
    ap.add_argument("--warmup", type=int, default=300, help="decisions made before, uncounted")
    ap.add_argument("--users", type=int, default=5000)
    ap.add_argument("--record-batch", type=int, default=25, help="decisions per recorder write")
    ap.add_argument("--model-dir", type=Path, default=Path("/tmp/tailorbot-bench-model"))
    add_history_arg(ap)
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.requests < 1 or args.warmup < 0:
        ap.error("--requests must be at least 1 and --warmup at least 0")
    if args.child:
        child(args)
        return
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        raise SystemExit("needs valgrind (Debian: apt-get install valgrind)")
    print(report(count_stages(args), args.requests))


if __name__ == "__main__":
    main()
