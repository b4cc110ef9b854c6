"""``tailorbot dataset build``: a point-in-time training set from the log or the archive."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Annotated

import typer

from tailorbot.cli.common import (
    CliError,
    ConfigOption,
    DataDirOption,
    reading_settings,
    reports_errors,
)
from tailorbot.cli.history import FromOption, SinceOption, UntilOption, open_history, parse_time

dataset_app = typer.Typer(help="Training sets built from the logged history.", no_args_is_help=True)


@dataset_app.command("build")
@reports_errors
def build(
    source: FromOption = "log",
    since: SinceOption = None,
    until: UntilOption = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="JSONL file to write (default: stdout).")
    ] = None,
    half_life_days: Annotated[
        float, typer.Option("--half-life-days", min=0.001, help="Recency weight half-life.")
    ] = 30.0,
    data_dir: DataDirOption = None,
    config: ConfigOption = None,
) -> None:
    """Each labelled message with the user's features as of that moment, one JSON per line."""
    from tailorbot.features.params import FeatureParams
    from tailorbot.models.pipeline.dataset import build_dataset, write_rows

    settings = reading_settings(config, data_dir=data_dir)
    with open_history(settings, source, since, until) as history:
        rows = build_dataset(
            history.events,
            history.profiles,
            since=parse_time(since, "--since"),
            until=parse_time(until, "--until"),
            half_life_days=half_life_days,
            params=FeatureParams.of(settings),
        )
    if not rows:
        raise CliError(
            "no labelled message in the window: label some with `tailorbot label import` "
            "or intent_label events"
        )
    if out is None:
        for row in rows:
            typer.echo(json.dumps(row, sort_keys=True))
        return
    write_rows(rows, out)
    labels = Counter(r["intent"] for r in rows)
    typer.echo(
        f"wrote {len(rows)} rows ({len(labels)} intents, {len({r['user_id'] for r in rows})} "
        f"users, {rows[0]['timestamp']} .. {rows[-1]['timestamp']}) to {out}",
        err=True,
    )


def register(app: typer.Typer) -> None:
    app.add_typer(dataset_app, name="dataset")
