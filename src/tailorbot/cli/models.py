"""``tailorbot models list|show|promote|rollback``: the registry's versions and its pointer.

A refusal (the gate failed, nothing to roll back to, no such version) is one line on stderr
and exit status 1.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from tailorbot.cli.common import (
    CliError,
    ConfigOption,
    DataDirOption,
    load_settings,
    reports_errors,
)

models_app = typer.Typer(
    help="Model versions: list, show, promote, roll back.", no_args_is_help=True
)
KindOption = Annotated[str, typer.Option("--kind", help="Model kind.")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON.")]


@models_app.command("list")
@reports_errors
def list_versions(
    kind: KindOption = "intent",
    data_dir: DataDirOption = None,
    config: ConfigOption = None,
    json_output: JsonOption = False,
) -> None:
    """Every version, oldest first; the current one is marked with *."""
    from tailorbot.models import registry

    settings = load_settings(config, data_dir=data_dir)
    current = registry.current_version(settings.data_dir, kind)
    rows = [
        _summary(settings.data_dir, kind, v, current)
        for v in registry.versions(settings.data_dir, kind)
    ]
    if json_output:
        typer.echo(json.dumps({"current": current, "versions": rows}))
        return
    if not rows:
        typer.echo(f"no {kind} model versions under {settings.data_dir}")
        return
    for row in rows:
        mark = "*" if row["current"] else " "
        test = row["test_accuracy"]
        typer.echo(
            f"{mark} {row['version']}  rows={row['rows']}  "
            f"test_accuracy={'-' if test is None else f'{test:.4f}'}  "
            f"gate={row['gate']}  parent={row['parent'] or '-'}"
        )


def _summary(data_dir: Any, kind: str, version: str, current: str | None) -> dict[str, Any]:
    from tailorbot.models import registry

    path = registry.kind_dir(data_dir, kind) / version / registry.METADATA_FILE
    card = json.loads(path.read_text())
    gate = card.get("gate")
    test = card.get("test") or {}
    return {
        "version": version,
        "current": version == current,
        "rows": (card.get("data") or card.get("training") or {}).get("rows")
        or (card.get("training") or {}).get("n_rows"),
        "test_accuracy": test.get("accuracy"),
        "gate": "-" if gate is None else ("passed" if gate["passed"] else "refused"),
        "parent": card.get("parent"),
    }


@models_app.command("show")
@reports_errors
def show(
    version: Annotated[str | None, typer.Argument(help="Version (default: current).")] = None,
    kind: KindOption = "intent",
    data_dir: DataDirOption = None,
    config: ConfigOption = None,
) -> None:
    """The model card of a version, as JSON."""
    from tailorbot.models import registry

    settings = load_settings(config, data_dir=data_dir)
    version = version or registry.current_version(settings.data_dir, kind)
    if version is None:
        raise CliError(f"no current {kind} model")
    path = registry.kind_dir(settings.data_dir, kind) / version / registry.METADATA_FILE
    if not path.is_file():
        raise CliError(f"no {kind} model version {version}")
    typer.echo(path.read_text())


@models_app.command("promote")
@reports_errors
def promote(
    version: Annotated[str, typer.Argument(help="The candidate version.")],
    data_dir: DataDirOption = None,
    config: ConfigOption = None,
) -> None:
    """Make a candidate current if it passes the gate (not worse on the same held-out rows,
    audit passed)."""
    from tailorbot.models import registry
    from tailorbot.models.pipeline import promotion
    from tailorbot.models.pipeline.audit import AuditGate

    settings = load_settings(config, data_dir=data_dir)
    if version not in registry.versions(settings.data_dir):
        raise CliError(f"no intent model version {version} under {settings.data_dir}")
    try:
        result = promotion.promote(
            settings.data_dir,
            version,
            AuditGate(settings.audit_max_gap, settings.audit_min_rows),
            tolerance=settings.promotion_tolerance,
            attributes=settings.audit_attributes,
        )
    except promotion.PromotionRefused as exc:
        raise CliError(str(exc)) from None
    current = result.current
    against = "" if current is None else f" (current scored {current['answer_score']:.4f})"
    typer.echo(
        f"{version} is now current: answer score {result.candidate['answer_score']:.4f} on its "
        f"held-out rows{against}, audit passed"
    )


@models_app.command("rollback")
@reports_errors
def rollback(data_dir: DataDirOption = None, config: ConfigOption = None) -> None:
    """Make the previous current version current again."""
    from tailorbot.models.pipeline import promotion

    settings = load_settings(config, data_dir=data_dir)
    try:
        version = promotion.rollback(settings.data_dir)
    except promotion.PromotionRefused as exc:
        raise CliError(str(exc)) from None
    typer.echo(f"rolled back: {version} is current again")


def register(app: typer.Typer) -> None:
    app.add_typer(models_app, name="models")
