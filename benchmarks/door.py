"""Per-event cost at the door, without HTTP: schema validation, then redaction.

In-process, single thread, the benchmark's synthetic events (short customer messages and
the other event types, a few with PII) plus, with ``--pii``, every message carrying an
e-mail, a phone number with an extension and a card written with no-break spaces.

    .venv/bin/python benchmarks/door.py --events 50000 [--pii]
"""

from __future__ import annotations

import argparse
import time

from _harness import machine
from events_gen import make_events

from tailorbot.events.redact import Redactor
from tailorbot.events.schema import EVENT_ADAPTER, validation_context

PII = " - jane.doe@example.com, +1 415 555 2671 x12, card 4111\u00a01111\u00a01111\u00a01111"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=50_000)
    ap.add_argument("--users", type=int, default=5_000)
    ap.add_argument("--pii", action="store_true", help="every message carries PII")
    args = ap.parse_args()
    raw = make_events(args.events, args.users)
    if args.pii:
        for event in raw:
            if event["type"] == "message":
                event["text"] += PII
    context = validation_context()
    redactor = Redactor()

    started = time.perf_counter()
    events = [EVENT_ADAPTER.validate_python(event, context=context) for event in raw]
    validated = time.perf_counter()
    redacted = [redactor.redact_event(event) for event in events]
    done = time.perf_counter()

    changed = sum(a is not b for a, b in zip(events, redacted, strict=True))
    per_event = 1e6 / args.events
    print(f"machine: {machine()}")
    print(f"events: {args.events} ({changed} changed by redaction), pii={args.pii}")
    print(f"validation: {(validated - started) * per_event:.1f} us/event")
    print(f"redaction:  {(done - validated) * per_event:.1f} us/event")


if __name__ == "__main__":
    main()
