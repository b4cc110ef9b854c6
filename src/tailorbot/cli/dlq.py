"""``tailorbot dlq list|replay|drop``: the dead letters (log records refused for good).

``replay`` validates a letter's event again at the door's rules (U+0000 removed), appends
it to the log under its key and deletes the letter; every consumer group then reads it
(the ones that had applied it already skip it by its ``event_id``). ``drop`` deletes.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Annotated, Any

import orjson
import typer

from tailorbot.cli.common import (
    CliError,
    ConfigOption,
    DataDirOption,
    reading_settings,
    reports_errors,
)
from tailorbot.config import Settings

dlq_app = typer.Typer(help="Dead letters: log records a backend refused for good.")

IdsArgument = Annotated[
    list[str] | None, typer.Argument(help="Letter ids (group:partition:offset).")
]
AllOption = Annotated[bool, typer.Option("--all", help="Every dead letter.")]


def _describe(letter: Any) -> dict[str, Any]:
    try:
        event_id = orjson.loads(letter.value).get("event_id")
    except (orjson.JSONDecodeError, AttributeError):
        event_id = None
    return {
        "letter_id": letter.letter_id,
        "group": letter.group,
        "partition": letter.partition,
        "offset": letter.offset,
        "event_id": event_id,
        "reason": letter.reason,
        "failed_at": datetime.fromtimestamp(letter.failed_at, UTC).isoformat(),
    }


def _selected(store: Any, ids: list[str] | None, everything: bool) -> list[Any]:
    if not ids and not everything:
        raise CliError("name the letters to handle, or pass --all")
    letters = store.list(limit=max(store.count(), 1))
    if everything:
        return letters
    by_id = {letter.letter_id: letter for letter in letters}
    missing = [letter_id for letter_id in ids or [] if letter_id not in by_id]
    if missing:
        raise CliError(f"no dead letter {missing[0]!r} (see `tailorbot dlq list`)")
    return [by_id[letter_id] for letter_id in ids or []]


def _open(settings: Settings) -> Any:
    from tailorbot.dlq import open_dead_letters

    return open_dead_letters(settings.resolved_store_url())


@dlq_app.command("list")
@reports_errors
def list_letters(
    limit: Annotated[int, typer.Option(min=1, help="At most this many, oldest first.")] = 100,
    as_json: Annotated[bool, typer.Option("--json", help="JSON instead of text.")] = False,
    data_dir: DataDirOption = None,
    config: ConfigOption = None,
) -> None:
    """The dead letters, oldest first, with the reason each was refused."""
    store = _open(reading_settings(config, data_dir=data_dir))
    try:
        rows = [_describe(letter) for letter in store.list(limit)]
    finally:
        store.close()
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
    elif not rows:
        typer.echo("no dead letters")
    for row in [] if as_json else rows:
        typer.echo(f"{row['letter_id']}  event {row['event_id']}  {row['reason']}")


@dlq_app.command()
@reports_errors
def replay(
    letter_ids: IdsArgument = None,
    everything: AllOption = False,
    data_dir: DataDirOption = None,
    config: ConfigOption = None,
) -> None:
    """Append the letters' events to the log again (normalized), then delete the letters."""
    from tailorbot.events.codec import encode_event
    from tailorbot.events.schema import EVENT_ADAPTER
    from tailorbot.log import open_log

    settings = reading_settings(config, data_dir=data_dir)
    store = _open(settings)
    log = open_log(settings.resolved_log_url(), settings.partitions)
    try:
        letters = _selected(store, letter_ids, everything)
        items = []
        for letter in letters:
            try:
                raw = orjson.loads(letter.value)
                raw.pop("ingested_at", None)
                event = EVENT_ADAPTER.validate_python(raw)  # the door's rules, U+0000 removed
            except (ValueError, TypeError, AttributeError) as exc:
                raise CliError(
                    f"dead letter {letter.letter_id!r} holds no valid event ({exc}); "
                    "`tailorbot dlq drop` it"
                ) from None
            items.append((letter.key, encode_event(event, time.time())))
        if items:
            log.append(items)
        store.drop(letter.letter_id for letter in letters)
    finally:
        log.close()
        store.close()
    typer.echo(f"replayed {len(letters)} dead letter(s)")


@dlq_app.command()
@reports_errors
def drop(
    letter_ids: IdsArgument = None,
    everything: AllOption = False,
    data_dir: DataDirOption = None,
    config: ConfigOption = None,
) -> None:
    """Delete dead letters for good."""
    store = _open(reading_settings(config, data_dir=data_dir))
    try:
        letters = _selected(store, letter_ids, everything)
        dropped = store.drop(letter.letter_id for letter in letters)
    finally:
        store.close()
    typer.echo(f"dropped {dropped} dead letter(s)")


def register(app: typer.Typer) -> None:
    app.add_typer(dlq_app, name="dlq")
