"""What the learning commands read: the logged history, the profiles and the decisions.

``--from log`` replays the event log; ``--from archive`` reads the PostgreSQL archive
(``archive_url``). Both give events in event-time order, up to ``until`` (exclusive): the
training set and the audit never see anything after the window's end. Neither gives what a
user's erasure drops (the log source checks the feature store's erasures, as the worker does).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

import typer

from tailorbot.cli.common import CliError
from tailorbot.config import Settings

SOURCES = ("log", "archive")
FromOption = Annotated[str, typer.Option("--from", help="Read the event log or the archive.")]
SinceOption = Annotated[
    str | None, typer.Option("--since", help="Window start, ISO-8601 (UTC if no zone).")
]
UntilOption = Annotated[
    str | None, typer.Option("--until", help="Window end (exclusive), ISO-8601.")
]


def parse_time(value: str | None, option: str) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise CliError(f"{option}: not an ISO-8601 date or time: {value!r}") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@dataclass
class History:
    events: list[dict[str, Any]]
    profiles: dict[str, dict[str, Any]]
    decision_of: Callable[[str], dict[str, Any] | None]


@contextmanager
def open_history(
    settings: Settings, source: str, since: str | None, until: str | None
) -> Iterator[History]:
    """The events up to ``until`` (history before ``since`` feeds the features), the users'
    profiles and a decision-record lookup; ``since`` is returned to the caller's filter."""
    from tailorbot.models.pipeline.source import archive_events, log_events
    from tailorbot.runtime import Runtime

    if source not in SOURCES:
        raise CliError(f"--from: must be one of {', '.join(SOURCES)}, got {source!r}")
    end = parse_time(until, "--until")
    parse_time(since, "--since")
    runtime = Runtime(settings.model_copy(update={"run_worker_in_server": False}))
    skipped: list[Any] = []
    try:
        if source == "archive":
            if runtime.archive is None:
                raise CliError("--from archive: no archive_url is configured")
            events = archive_events(runtime.archive, None, end)
        else:
            # the erased users' records that reached the log after their erasure stay out
            events = log_events(runtime.log, None, end, skipped, features=runtime.stores.features)
        if skipped:
            typer.echo(
                f"note: skipped {len(skipped)} log record(s) the stream worker does not apply "
                "either (not an event; see `tailorbot dlq list`)",
                err=True,
            )
        users = sorted({e["user_id"] for e in events})
        profiles = runtime.stores.profiles.get_many(users) if users else {}
        yield History(events, profiles, runtime.stores.decisions.get)
    finally:
        runtime.stop()
