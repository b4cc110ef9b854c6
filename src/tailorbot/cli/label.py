"""``tailorbot label export|import``: a small semi-automated annotation loop.

``export`` writes the unlabelled customer messages most worth a human's time as CSV: first
those where the current model disagrees with the logged intent, then the least confident.
An annotator fills the ``intent`` column; ``import`` sends the filled rows back as
``intent_label`` events through the ingestion service (validated and logged like any event).
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path
from typing import Annotated

import typer

from tailorbot.cli.common import (
    CliError,
    ConfigOption,
    DataDirOption,
    load_settings,
    reports_errors,
)
from tailorbot.cli.history import FromOption, SinceOption, UntilOption, open_history

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
    from tailorbot.models.pipeline.labels import EXPORT_COLUMNS, LabelIndex, annotation_candidates

    settings = load_settings(config, data_dir=data_dir)
    with open_history(settings, source, since, until) as history:
        index = LabelIndex.from_events(history.events)
    try:
        model = registry.load_current(settings.data_dir).model
    except registry.ModelNotFoundError:
        model = None  # no model yet: rank by the logged confidence only
    rows = annotation_candidates(index, model, limit)
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
    data_dir: DataDirOption = None,
    config: ConfigOption = None,
) -> None:
    """Send the rows with a filled intent column as intent_label events."""
    from tailorbot.events.codec import now_iso
    from tailorbot.models.pipeline.labels import label_events_from_rows
    from tailorbot.runtime import Runtime

    settings = load_settings(config, data_dir=data_dir)
    if not path.is_file():
        raise CliError(f"no such file: {path}")
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        missing = {"intent", "user_id", "session_id"} - set(reader.fieldnames or ())
        if missing:
            raise CliError(f"{path}: missing columns: {', '.join(sorted(missing))}")
        events = label_events_from_rows(reader, now_iso())
    if not events:
        raise CliError(f"{path}: no row has a filled intent column")
    runtime = Runtime(settings.model_copy(update={"run_worker_in_server": False}))
    try:
        for start in range(0, len(events), BATCH):
            runtime.ingestion.ingest(events[start : start + BATCH])
    finally:
        runtime.stop()
    typer.echo(f"imported {len(events)} labels as intent_label events")


def register(app: typer.Typer) -> None:
    app.add_typer(label_app, name="label")
