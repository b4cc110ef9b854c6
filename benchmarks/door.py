"""Per-event cost at the door, without HTTP: schema validation, then redaction.

In-process, single thread, the benchmark's synthetic events (short customer messages and
the other event types, a few with PII) plus, with ``--pii``, every message carrying an
e-mail, a phone number with an extension and a card written with no-break spaces.
``--stages`` times the whole ingestion of ``POST /v1/events`` instead, in CPU seconds, on
bodies of ``--batch`` events: parsing the body, validation (with the precheck, the PII
checks of ids and redaction), encoding, and the append to a SQLite log.

    .venv/bin/python benchmarks/door.py --events 50000 [--pii]
    .venv/bin/python benchmarks/door.py --events 20000 --users 20000 --stages
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from typing import Any

from _harness import machine
from events_gen import batches, make_events

from tailorbot.events.redact import Redactor
from tailorbot.events.schema import EVENT_ADAPTER, validation_context

PII = " - jane.doe@example.com, +1 415 555 2671 x12, card 4111\u00a01111\u00a01111\u00a01111"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=50_000)
    ap.add_argument("--users", type=int, default=5_000)
    ap.add_argument("--pii", action="store_true", help="every message carries PII")
    ap.add_argument("--stages", action="store_true", help="the stages of an ingestion")
    ap.add_argument("--batch", type=int, default=100, help="events per body (--stages)")
    args = ap.parse_args()
    raw = make_events(args.events, args.users)
    if args.stages:
        stages(raw, args.batch)
        return
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


def stages(raw: list[dict[str, Any]], batch: int) -> None:
    """CPU microseconds per event of each stage of an ingestion (what one request does)."""
    from tailorbot.api.routers.events import parse_events_body
    from tailorbot.config import Settings
    from tailorbot.events.codec import encode_event
    from tailorbot.events.identifiers import pii_kind_of
    from tailorbot.log import open_log
    from tailorbot.services.ingestion import IngestionService

    bodies = batches(raw, batch)
    settings = Settings.load(data_dir=tempfile.mkdtemp(prefix="tb-door-"))
    log = open_log(settings.resolved_log_url(), settings.partitions)
    ingestion = IngestionService(log, Redactor.from_settings(settings), settings)
    parsed = [parse_events_body(body) for body in bodies]
    valid = [[event for _, event in ingestion._validate(events)[0]] for events in parsed]
    now = time.time()

    def timed(label: str, step: Callable[[int], Any]) -> None:
        pii_kind_of.cache_clear()  # event ids are new at every request: no warm cache
        started = time.process_time()
        for i in range(len(bodies)):
            step(i)
        print(f"{label:32s} {(time.process_time() - started) * 1e6 / len(raw):5.1f} us/event")

    print(f"machine: {machine()}; {len(raw)} events in bodies of {batch}")
    timed("parse the body", lambda i: parse_events_body(bodies[i]))
    timed("validate (precheck, ids, redact)", lambda i: ingestion._validate(parsed[i]))
    timed("encode", lambda i: [encode_event(e, now) for e in valid[i]])
    encoded = [[(e.user_id, encode_event(e, now)) for e in events] for events in valid]
    timed("append to the log", lambda i: log.append(encoded[i]))
    timed("whole ingest", lambda i: ingestion.ingest(parse_events_body(bodies[i])))
    log.close()


if __name__ == "__main__":
    main()
