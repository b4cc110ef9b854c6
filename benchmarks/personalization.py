"""Personalization evidence: the demo's A/B lift and off-policy evaluation vs on-policy runs.

Every run is a real `tailorbot demo` (a `tailorbot serve` process, simulated customers over
HTTP); the intent model is trained once and copied into each run's fresh data directory.

1. **A/B lift**: `tailorbot demo --json --seed S` in the default world and with
   `--null-world`, for each seed: the CSAT and resolution lift of the personalized policy
   over the strongest non-personalized control, with the user-clustered 95 % interval.
2. **Off-policy vs on-policy**: `tailorbot evaluate-policy` (doubly robust) on each
   default-world demo's log estimates every fixed variant's mean reward and CSAT, on the whole
   log and on the control arm only; a separate demo per fixed variant (`--holdout 1.0`,
   `TAILORBOT_CONTROL_VARIANT=v`, the same seed) measures its on-policy value (the control
   arm's mean with its user-clustered interval). The control arm serves articles ranked
   without the user's view (text, intent, statistics shared by all customers), as the
   on-policy runs do; the whole log mixes in personalized articles.

    .venv/bin/python benchmarks/personalization.py                    # 5 seeds, 3000 contacts
    .venv/bin/python benchmarks/personalization.py --seeds 0 1 --contacts 1000 --skip-ope
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from _harness import machine

VARIANTS = ("concise", "step_by_step", "empathetic")
CUSTOMERS = [400]  # set from --customers (the ceilings use the demo's population)


def tailorbot(args: list[str], env: dict[str, str] | None = None) -> dict[str, Any]:
    cli = str(Path(sys.executable).parent / "tailorbot")
    done = subprocess.run(
        [cli, *args], env={**os.environ, **(env or {})}, capture_output=True, text=True
    )
    if done.returncode != 0:
        raise SystemExit(f"tailorbot {' '.join(args)} failed:\n{done.stderr or done.stdout}")
    parsed: dict[str, Any] = json.loads(done.stdout)
    return parsed


def fresh_dir(root: Path, model_dir: Path, name: str) -> Path:
    directory = root / name
    shutil.copytree(model_dir / "models", directory / "models")
    return directory


def demo(directory: Path, seed: int, args: argparse.Namespace, *extra: str, **env: str) -> Any:
    return tailorbot(
        [
            "demo", "--json", "--seed", str(seed), "--data-dir", str(directory),
            "--customers", str(args.customers), *extra,
        ],
        env=env,
    )  # fmt: skip


def fmt(estimate: dict[str, Any] | None, key: str = "estimate") -> str:
    if estimate is None or estimate.get(key) is None:
        return "n/a"
    low, high = estimate["ci95"]
    return f"{estimate[key]:+.3f} [{low:+.3f}, {high:+.3f}]"


def lift_table(runs: dict[str, list[dict[str, Any]]], seeds: list[int]) -> None:
    print("\n## A/B lift over the strongest non-personalized control (user-clustered 95 % CI)\n")
    print("| world | seed | control | CSAT lift | resolution lift | covers 0 (CSAT) |")
    print("| --- | ---: | --- | --- | --- | --- |")
    for world, reports in runs.items():
        covering = 0
        for seed, report in zip(seeds, reports, strict=True):
            ab = report["ab"]
            low, high = ab["csat_lift"]["ci95"]
            covers = low <= 0.0 <= high
            covering += covers
            print(
                f"| {world} | {seed} | {ab['control']} | {fmt(ab['csat_lift'])} | "
                f"{fmt(ab['resolution_lift'])} | {'yes' if covers else 'no'} |"
            )
        print(f"| {world} | | | | | **{covering} of {len(reports)}** |")
    print("\nutility ceilings of the default world (rating points; gain over the best fixed):")
    for seed in seeds:
        c = ceilings(seed, CUSTOMERS[0])
        print(
            f"  seed {seed}: best fixed {c['best_fixed']:+.3f}; non-personal context (the "
            f"control's) {c['generic_context'] - c['best_fixed']:+.3f}; + tenure "
            f"{c['generic_and_tenure'] - c['best_fixed']:+.3f}; oracle "
            f"{c['oracle'] - c['best_fixed']:+.3f}"
        )
    print("\npreferred-variant share (personalized first quarter -> last quarter; control):")
    for world, reports in runs.items():
        for seed, report in zip(seeds, reports, strict=True):
            share = report["preferred_variant_share"]
            print(
                f"  {world} seed {seed}: {share['personalized_first_quarter']:.3f} -> "
                f"{share['personalized_last_quarter']:.3f}; control {share['control']:.3f}"
            )


def ceilings(seed: int, customers: int) -> dict[str, float]:
    """What a variant policy can gain at most in this seed's population, in rating points of
    utility (contacts weighted by contact rate): the best fixed variant, the best policy that
    knows the non-personal context (tier group, channel, language: what the A/B control's
    bandit sees), one that also knows the tenure, and an oracle that knows each customer's
    utilities."""
    from collections import defaultdict

    import numpy as np

    from tailorbot.sim import CustomerPopulation

    population = list(CustomerPopulation(size=customers, seed=seed, intents=["x"]))
    weight = np.array([c.contact_rate for c in population])
    weight /= weight.sum()
    utility = np.array([c.utilities for c in population])

    def best_per_cell(key: Any) -> float:
        cells: dict[Any, list[int]] = defaultdict(list)
        for i, c in enumerate(population):
            cells[key(c)].append(i)
        return sum(float((weight[ix, None] * utility[ix]).sum(0).max()) for ix in cells.values())

    def generic(c: Any) -> tuple[Any, ...]:
        return (c.tier != "standard", c.channel, c.language != "en")

    return {
        "best_fixed": best_per_cell(lambda c: 0),
        "generic_context": best_per_cell(generic),
        "generic_and_tenure": best_per_cell(lambda c: (*generic(c), c.new_account)),
        "oracle": float((weight * utility.max(1)).sum()),
    }


def ope_rows(directory: Path, arm: str | None) -> dict[tuple[str, str], dict[str, Any]]:
    args = ["evaluate-policy", "--data-dir", str(directory), "--json", "--estimator", "dr"]
    report = tailorbot(args + (["--arm", arm] if arm else []))
    return {(r["name"], r["metric"]): r for r in report["policies"]}


def ope_table(results: list[dict[str, Any]]) -> None:
    print("\n## Off-policy (doubly robust) vs on-policy value per fixed variant\n")
    print("| seed | variant | metric | on-policy run | OPE, whole log (ESS) | OPE, control (ESS) |")
    print("| ---: | --- | --- | --- | --- | --- |")
    covered = {"whole": 0, "control": 0}
    total = 0
    for row in results:
        truth = row["on_policy"]
        cells = []
        for part in ("whole", "control"):
            est = row[part]
            inside = est["ci95"][0] <= truth["mean"] <= est["ci95"][1]
            covered[part] += inside and row["metric"] == "reward"
            low, high = est["ci95"]
            mark = " ✓" if inside else ""
            cells.append(f"{est['value']:.3f} [{low:.3f}, {high:.3f}] ({est['ess']:.0f}){mark}")
        total += row["metric"] == "reward"
        low, high = truth["ci95"]
        print(
            f"| {row['seed']} | {row['variant']} | {row['metric']} | "
            f"{truth['mean']:.3f} [{low:.3f}, {high:.3f}] | {cells[0]} | {cells[1]} |"
        )
    print(
        f"\nreward: the on-policy mean lies inside the OPE interval in {covered['whole']} of "
        f"{total} (whole log) and {covered['control']} of {total} (control arm) variant-seed pairs"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    ap.add_argument("--contacts", type=int, default=3000, help="per demo run")
    ap.add_argument("--customers", type=int, default=400)
    ap.add_argument("--onpolicy-contacts", type=int, default=2000, help="per fixed-variant run")
    ap.add_argument("--skip-ope", action="store_true", help="only the A/B lift figure")
    ap.add_argument(
        "--long-contacts", type=int, default=0, help="also one default-world run this long (seed 0)"
    )
    ap.add_argument("--json", help="also write every raw result to this file")
    args = ap.parse_args()
    CUSTOMERS[0] = args.customers
    print(f"# personalization evidence ({machine()})")
    raw: dict[str, Any] = {"lift": {}, "ope": []}
    with tempfile.TemporaryDirectory(prefix="tb-personal-") as tmp:
        root = Path(tmp)
        model_dir = root / "model"
        subprocess.run(
            [str(Path(sys.executable).parent / "tailorbot"), "train", "--data-dir", str(model_dir)],
            check=True,
            capture_output=True,
        )
        runs: dict[str, list[dict[str, Any]]] = {"default": [], "null": []}
        for seed in args.seeds:
            for world in runs:
                directory = fresh_dir(root, model_dir, f"{world}-{seed}")
                extra = ["--contacts", str(args.contacts)]
                extra += ["--null-world"] if world == "null" else []
                runs[world].append(demo(directory, seed, args, *extra))
        raw["lift"] = runs
        lift_table(runs, args.seeds)
        if args.long_contacts:
            directory = fresh_dir(root, model_dir, "long")
            long = demo(directory, args.seeds[0], args, "--contacts", str(args.long_contacts))
            raw["long"] = long
            share = long["preferred_variant_share"]
            print(
                f"\nlong run ({args.long_contacts} contacts, seed {args.seeds[0]}): CSAT lift "
                f"{fmt(long['ab']['csat_lift'])}, resolution lift "
                f"{fmt(long['ab']['resolution_lift'])}; preferred-variant share "
                f"{share['personalized_first_quarter']:.3f} -> "
                f"{share['personalized_last_quarter']:.3f} (control {share['control']:.3f})"
            )
        if not args.skip_ope:
            for seed in args.seeds:
                logged = root / f"default-{seed}"
                whole, control = ope_rows(logged, None), ope_rows(logged, "control")
                for variant in VARIANTS:
                    directory = fresh_dir(root, model_dir, f"onpolicy-{seed}-{variant}")
                    extra = ["--contacts", str(args.onpolicy_contacts), "--holdout", "1.0"]
                    report = demo(directory, seed, args, *extra, TAILORBOT_CONTROL_VARIANT=variant)
                    arm = report["experiment"]["arms"]["control"]
                    for metric, key in (("reward", "reward"), ("csat", "csat")):
                        name = (f"fixed:{variant}", metric)
                        raw["ope"].append(
                            {
                                "seed": seed,
                                "variant": variant,
                                "metric": metric,
                                "on_policy": arm[key],
                                "whole": whole[name],
                                "control": control[name],
                            }
                        )
            ope_table(raw["ope"])
    if args.json:
        Path(args.json).write_text(json.dumps(raw, indent=1))


if __name__ == "__main__":
    main()
