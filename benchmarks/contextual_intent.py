"""Contextual intent model vs text-only on a built dataset (e.g. the demo's log).

Splits the rows by time (70/15/15), trains the text model on train, the LightGBM model on
out-of-fold text probabilities + the user's features, early-stops on validation and scores
both once on the test split.

    .venv/bin/tailorbot demo --data-dir /tmp/demo
    .venv/bin/tailorbot dataset build --data-dir /tmp/demo --out /tmp/demo.jsonl
    .venv/bin/python benchmarks/contextual_intent.py /tmp/demo.jsonl
"""

from __future__ import annotations

import argparse
import json
import time

from _harness import machine

from tailorbot.models.pipeline.contextual import compare_on_split
from tailorbot.models.pipeline.dataset import read_rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset", help="JSONL written by `tailorbot dataset build`")
    parser.add_argument("--rounds", type=int, default=300)
    args = parser.parse_args()
    rows = read_rows(args.dataset)
    started = time.perf_counter()
    result = compare_on_split(rows, rounds=args.rounds)
    result["seconds"] = round(time.perf_counter() - started, 1)
    result["machine"] = machine()
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
