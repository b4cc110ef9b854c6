"""``tailorbot dlq list|replay|drop``: the dead letters (log records refused for good).

``replay`` hands each letter's event to the door of ``POST /v1/events`` (the
:class:`~tailorbot.services.ingestion.IngestionService` of the runtime: schema and time
window, knowledge-base article ids, PII redaction, U+0000 removed), which appends the ones it
accepts to the log under their user; their letters are then deleted, and every consumer
group reads them (the ones that had applied an event already skip it by its ``event_id``).
A letter the door refuses stays a dead letter, reported on one line with the reason. A
letter whose event has no ``event_id`` gets one derived from the record it holds, the same
on every run, so replaying it again (twice in one command, or after a crash between the
append and the deletion) never counts it twice. ``drop`` deletes letters.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
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
    usage_error,
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


def _require_selection(ids: list[str] | None, everything: bool) -> None:
    """No letter named and no ``--all``: a missing value (usage error, exit 2)."""
    if not ids and not everything:
        usage_error("name the letters to handle (LETTER_IDS...), or pass --all")


def _selected(store: Any, ids: list[str] | None, everything: bool) -> list[Any]:
    """The letters named (each once, however often given), or every letter."""
    letters = store.list(limit=max(store.count(), 1))
    if everything:
        return letters
    by_id = {letter.letter_id: letter for letter in letters}
    wanted = list(dict.fromkeys(ids or []))
    missing = [letter_id for letter_id in wanted if letter_id not in by_id]
    if missing:
        raise CliError(f"no dead letter {missing[0]!r} (see `tailorbot dlq list`)")
    return [by_id[letter_id] for letter_id in wanted]


def _open(settings: Settings) -> Any:
    from tailorbot.dlq import open_dead_letters

    return open_dead_letters(settings.resolved_store_url())


def stable_event_id(letter: Any) -> str:
    """The ``event_id`` of a letter's event that had none: derived from the log record it
    holds (partition, offset, key and bytes; not the group, so the letters two groups wrote
    for one record give one event), 32 hex digits (an id never taken for PII)."""
    digest = hashlib.sha256()
    for part in (b"dlq", str(letter.partition).encode(), str(letter.offset).encode(),
                 letter.key.encode(), letter.value):  # fmt: skip
        digest.update(len(part).to_bytes(8, "big") + part)
    return digest.hexdigest()[:32]


def _raw_event(letter: Any) -> Any:
    """The letter's event as the door receives it (parsed JSON); ValueError if not JSON."""
    raw = orjson.loads(letter.value)
    if isinstance(raw, dict):
        raw.pop("ingested_at", None)  # set by the door when it appends
        if raw.get("event_id") in (None, ""):
            raw["event_id"] = stable_event_id(letter)
    return raw


def _reasons(problems: Iterable[tuple[Any, Any]]) -> str:
    """``field: reason; ...`` of a refusal's ``(field, reason)`` pairs."""
    return "; ".join(f"{field}: {reason}" for field, reason in problems)


def _through_the_door(ingestion: Any, raws: list[Any]) -> list[str | None]:
    """Ingest one batch (partial): per event, None when stored (or a duplicate of one
    stored with it), else why the door refused it."""
    from tailorbot.errors import InvalidInput, PayloadTooLarge

    try:
        result = ingestion.ingest(raws, partial=True)
    except (InvalidInput, PayloadTooLarge) as exc:  # no event of the batch is valid
        whole = [p for p in exc.problems if p.index is None]
        return [
            _reasons(
                (p.field, p.reason) for p in whole or [p for p in exc.problems if p.index == i]
            )
            or exc.message
            for i in range(len(raws))
        ]
    return [
        None
        if status["status"] != "rejected"
        else _reasons((e["field"], e["reason"]) for e in status["errors"])
        for status in result.results
    ]


def _replay(runtime: Any, letters: list[Any]) -> tuple[int, list[tuple[str, str]]]:
    """Replay ``letters`` batch by batch (each letter deleted once its event is durable);
    how many were replayed, and ``(letter id, reason)`` of each the door refused."""
    refused: list[tuple[str, str]] = []
    replayed = 0
    batch = max(1, runtime.settings.max_batch_events)
    for start in range(0, len(letters), batch):
        chunk: list[Any] = []
        raws: list[Any] = []
        for letter in letters[start : start + batch]:
            try:
                raws.append(_raw_event(letter))
            except orjson.JSONDecodeError as exc:
                refused.append((letter.letter_id, f"not JSON: {exc}"))
                continue
            chunk.append(letter)
        if not chunk:
            continue
        verdicts = _through_the_door(runtime.ingestion, raws)
        done = [letter for letter, why in zip(chunk, verdicts, strict=True) if why is None]
        refused.extend(
            (letter.letter_id, why)
            for letter, why in zip(chunk, verdicts, strict=True)
            if why is not None
        )
        if done:
            runtime.dead_letters.drop(letter.letter_id for letter in done)
            replayed += len(done)
    return replayed, refused


@dlq_app.command("list")
@reports_errors
def list_letters(
    limit: Annotated[int, typer.Option(min=1, help="At most this many, oldest first.")] = 100,
    as_json: Annotated[bool, typer.Option("--json", help="JSON instead of text.")] = False,
    data_dir: DataDirOption = None,
    config: ConfigOption = None,
) -> None:
    """The dead letters, oldest first, with the reason each was refused."""
    store = _open(reading_settings(config, needs=("store",), data_dir=data_dir))
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
    """Send the letters' events through the door again (validated and redacted like
    ``POST /v1/events``), append the accepted ones to the log and delete their letters;
    a refused letter is kept and named with the reason (exit status 1)."""
    from tailorbot.runtime import Runtime

    _require_selection(letter_ids, everything)
    settings = reading_settings(config, data_dir=data_dir)
    runtime = Runtime(settings.model_copy(update={"run_worker_in_server": False}))
    try:
        letters = _selected(runtime.dead_letters, letter_ids, everything)
        replayed, refused = _replay(runtime, letters)
    finally:
        runtime.stop()
    for letter_id, why in refused:
        typer.secho(
            f"error: dead letter {letter_id!r} refused at the door ({why}); kept "
            "(`tailorbot dlq drop` it)",
            err=True,
            fg=typer.colors.RED,
        )
    kept = f", {len(refused)} refused and kept" if refused else ""
    typer.echo(f"replayed {replayed} dead letter(s){kept}")
    if refused:
        raise typer.Exit(1)


@dlq_app.command()
@reports_errors
def drop(
    letter_ids: IdsArgument = None,
    everything: AllOption = False,
    data_dir: DataDirOption = None,
    config: ConfigOption = None,
) -> None:
    """Delete dead letters for good."""
    _require_selection(letter_ids, everything)
    store = _open(reading_settings(config, needs=("store",), data_dir=data_dir))
    try:
        letters = _selected(store, letter_ids, everything)
        dropped = store.drop(letter.letter_id for letter in letters)
    finally:
        store.close()
    typer.echo(f"dropped {dropped} dead letter(s)")


def register(app: typer.Typer) -> None:
    app.add_typer(dlq_app, name="dlq")
