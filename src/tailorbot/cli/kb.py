"""``tailorbot kb check DIR``: validate a knowledge-base folder."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from tailorbot.cli.common import fail, reports_errors

kb_app = typer.Typer(help="Knowledge-base tools.", no_args_is_help=True)


@kb_app.command("check")
@reports_errors
def check(
    directory: Annotated[Path, typer.Argument(help="Folder of KB YAML files.")],
    labels: Annotated[
        Path | None,
        typer.Option(
            "--labels",
            help="Intent names (JSON list, e.g. categories.json, or one per line): "
            "intents outside it are errors, labels without an article warnings.",
        ),
    ] = None,
) -> None:
    """Validate a KB; print `file: field: reason` per problem, exit 1 on errors."""
    from tailorbot.kb import check_kb, read_labels

    label_names = read_labels(labels) if labels is not None else None
    report = check_kb(directory, label_names)
    for issue in report.errors:
        typer.echo(f"{issue}", err=True)
    for issue in report.warnings:
        typer.echo(f"warning: {issue}", err=True)
    if report.kb is None or report.errors:
        # a KB without a default template still loads (`tailorbot recs` reads its articles),
        # but a server cannot start from it: an error like the others
        fail(f"{len(report.errors)} error(s) in {directory}")
    kb = report.kb
    default = kb.default_template.id if kb.default_template else "none"
    fallback = kb.fallback_template.id if kb.fallback_template else "none"
    typer.echo(
        f"OK: {directory}: {len(report.files)} files, {len(kb.articles)} articles "
        f"({len(kb.intents())} intents), {len(kb.templates)} templates "
        f"({len(kb.templated_intents())} intents, default: {default}, fallback: {fallback})"
    )
    if label_names is not None:
        covered = len([label for label in set(label_names) if label in kb.intents()])
        typer.echo(f"labels: {covered} of {len(set(label_names))} have at least one article")


def register(app: typer.Typer) -> None:
    app.add_typer(kb_app, name="kb")
