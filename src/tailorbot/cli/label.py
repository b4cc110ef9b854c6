"""``tailorbot label export|import``: a small semi-automated annotation loop.

``export`` writes the unlabelled customer messages most worth a human's time as CSV: first
those where the current model disagrees with the logged intent, then the least confident;
only messages in the ``--since``/``--until`` window, none of a user whose profile withholds
analytics consent.
An annotator fills the ``intent`` column; ``import`` sends the filled rows back as
``intent_label`` events through the ingestion service (validated and logged like any event).
"""

from __future__ import annotations

import csv
import hashlib
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from tailorbot.cli.common import (
    CliError,
    ConfigOption,
    DataDirOption,
    load_settings,
    reading_settings,
    reports_errors,
)
from tailorbot.cli.history import FromOption, SinceOption, UntilOption, open_history, parse_time
from tailorbot.config import BUILTIN_INTENTS, Settings
from tailorbot.errors import BackendError, EngineError

label_app = typer.Typer(
    help="Export messages to annotate; import the labels.", no_args_is_help=True
)
BATCH = 500


@label_app.command("export")
@reports_errors
def export(
    out: Annotated[Path | None, typer.Option("--out", help="CSV file (default: stdout).")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="At most this many rows.")] = 200,
    source: FromOption = "log",
    since: SinceOption = None,
    until: UntilOption = None,
    data_dir: DataDirOption = None,
    config: ConfigOption = None,
) -> None:
    """Unlabelled messages to annotate, most useful first (CSV; fill the intent column)."""
    from tailorbot.models import registry
    from tailorbot.models.pipeline.dataset import consenting
    from tailorbot.models.pipeline.labels import EXPORT_COLUMNS, LabelIndex, annotation_candidates

    settings = reading_settings(config, data_dir=data_dir)
    with open_history(settings, source, since, until) as history:
        # a label trains the model: no message of a user who withheld analytics consent
        index = LabelIndex.from_events(consenting(history.events, history.profiles))
    try:
        model = registry.load_current(settings.data_dir).model
    except registry.ModelNotFoundError:
        model = None  # no model yet: rank by the logged confidence only
    rows = annotation_candidates(index, model, limit, since=parse_time(since, "--since"))
    handle = out.open("w", newline="", encoding="utf-8") if out is not None else sys.stdout
    try:
        writer = csv.DictWriter(handle, fieldnames=EXPORT_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    finally:
        if out is not None:
            handle.close()
    if out is not None:
        disagreeing = sum(r["reason"] == "disagreement" for r in rows)
        typer.echo(
            f"wrote {len(rows)} messages to annotate ({disagreeing} where the model disagrees "
            f"with the logged intent) to {out}",
            err=True,
        )


@label_app.command("import")
@reports_errors
def import_labels(
    path: Annotated[Path, typer.Argument(help="The annotated CSV.", dir_okay=False)],
    allow_new_intents: Annotated[
        bool,
        typer.Option(
            "--allow-new-intents",
            help="Accept intents neither the current model nor the KB knows (new classes).",
        ),
    ] = False,
    data_dir: DataDirOption = None,
    config: ConfigOption = None,
) -> None:
    """Send the rows with a filled intent column as intent_label events.

    Every row is checked before the first one is stored. A row's event id derives from the
    row, so importing the same file again repeats the same events (the log's readers
    deduplicate them) rather than adding new labels.
    """
    from tailorbot.events.codec import now_iso
    from tailorbot.models.pipeline.labels import LabelFileError, label_events_from_rows
    from tailorbot.runtime import Runtime

    settings = load_settings(config, data_dir=data_dir)
    if not path.is_file():
        raise CliError(f"no such file: {path}")
    try:
        # utf-8-sig: Excel's "CSV UTF-8" starts with a byte order mark
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            missing = {"intent", "user_id", "session_id"} - set(reader.fieldnames or ())
            if missing:
                raise CliError(f"{path}: missing columns: {', '.join(sorted(missing))}")
            rows = list(reader)
    except UnicodeDecodeError as exc:
        raise CliError(f"{path}: not UTF-8 text: {exc}") from None
    # the line of each row that becomes an event (label_events_from_rows skips empty intents)
    lines = [n for n, row in enumerate(rows, start=2) if (row.get("intent") or "").strip()]
    known = None if allow_new_intents else _known_intents(settings)
    try:
        events = label_events_from_rows(rows, now_iso(), known_intents=known)
    except LabelFileError as exc:
        raise CliError(f"{path}: {exc}") from None
    if not events:
        raise CliError(f"{path}: no row has a filled intent column")
    for event in events:
        event["event_id"] = _label_event_id(event)
    runtime = Runtime(settings.model_copy(update={"run_worker_in_server": False}))
    batch = min(BATCH, settings.max_batch_events)
    stored = 0
    try:
        # Every row checked before the first is stored: each batch is all or nothing, so a
        # bad row in a later batch used to leave the earlier ones stored.
        problems = runtime.ingestion.problems(events)
        if problems:
            first = problems[0]
            line = lines[first.index] if first.index is not None else "?"
            raise CliError(
                f"{path}: line {line}: {first.field}: {first.reason}; nothing was stored"
            )
        for start in range(0, len(events), batch):
            runtime.ingestion.ingest(events[start : start + batch])
            stored = min(start + batch, len(events))
    except (EngineError, BackendError) as exc:
        # the rows were valid: the backend failed; a rerun repeats the stored events harmlessly
        message = exc.message if isinstance(exc, EngineError) else str(exc)
        raise CliError(
            f"{path}: {stored} of {len(events)} labels stored, then: {message}; "
            "run the import again (the stored ones are not added twice)"
        ) from None
    finally:
        runtime.stop()
    typer.echo(f"imported {len(events)} labels as intent_label events")


def _known_intents(settings: Settings) -> set[str] | None:
    """The intents a label may name: the current intent model's, the KB's and the built-in
    ones; None (no check) before any model is trained."""
    from tailorbot.kb.loader import default_kb_dir
    from tailorbot.kb.repository import KBRepository
    from tailorbot.models import registry

    metadata = registry.current_metadata(settings.data_dir)
    if metadata is None:
        return None
    known = {str(label) for label in metadata.get("labels") or ()}
    live = KBRepository(settings.data_dir / "kb", settings.kb_dir or default_kb_dir())
    known.update(live.read().intents())  # the live KB as the servers read it; never written
    return known | set(BUILTIN_INTENTS)


def _label_event_id(event: dict[str, Any]) -> str:
    """The same row gives the same id on every import (32 hex digits: never taken for PII)."""
    parts = (event["user_id"], event["session_id"], event.get("message_event_id") or "",
             event.get("decision_id") or "", event["intent"])  # fmt: skip
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:32]


def register(app: typer.Typer) -> None:
    app.add_typer(label_app, name="label")
