"""``tailorbot models list|show|promote|rollback``: the registry's versions and its pointers,
for every kind of model (``intent``, ``item_knn`` the CF recommender, ``reward``).

A refusal (the gate failed, no comparison possible, nothing to roll back to, no such
version) is one line on stderr and exit status 1.
"""

from __future__ import annotations

import json
from collections.abc import Callable
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
    help="Model versions of every kind: list, show, promote, roll back.", no_args_is_help=True
)
KindOption = Annotated[
    str, typer.Option("--kind", help="Model kind: intent, item_knn (CF recommender), reward.")
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def _kind(kind: str) -> str:
    from tailorbot.models.pipeline.judge import KINDS

    if kind not in KINDS:
        raise CliError(f"--kind: {kind!r} is not one of {', '.join(KINDS)}")
    return kind


@models_app.command("list")
@reports_errors
def list_versions(
    kind: Annotated[
        str | None, typer.Option("--kind", help="Only this kind (default: every kind).")
    ] = None,
    data_dir: DataDirOption = None,
    config: ConfigOption = None,
    json_output: JsonOption = False,
) -> None:
    """Every version of every kind, oldest first; the current one is marked with *."""
    from tailorbot.models import registry
    from tailorbot.models.pipeline.judge import KINDS

    settings = load_settings(config, data_dir=data_dir)
    kinds = [_kind(kind)] if kind is not None else list(KINDS)
    found: dict[str, dict[str, Any]] = {}
    for name in kinds:
        current = registry.current_version(settings.data_dir, name)
        rows = [_summary(settings.data_dir, name, v, current)
                for v in registry.versions(settings.data_dir, name)]  # fmt: skip
        found[name] = {"current": current, "versions": rows}
    if json_output:
        typer.echo(json.dumps(found[kinds[0]] if kind is not None else found))
        return
    for name, listed in found.items():
        if not listed["versions"]:
            typer.echo(f"{name}: no versions")
            continue
        typer.echo(f"{name}:")
        for row in listed["versions"]:
            test = row["test"]
            typer.echo(
                f"{'*' if row['current'] else ' '} {row['version']}  rows={row['rows']}  "
                f"test_{row['metric']}={'-' if test is None else f'{test:.4f}'}  "
                f"gate={row['gate']}  parent={row['parent'] or '-'}"
            )


def _summary(data_dir: Any, kind: str, version: str, current: str | None) -> dict[str, Any]:
    from tailorbot.models import registry
    from tailorbot.models.pipeline.judge import judge_for

    path = registry.kind_dir(data_dir, kind) / version / registry.METADATA_FILE
    card = json.loads(path.read_text())
    gate = card.get("gate")
    metric = judge_for(kind).metric
    test = card.get("test") or {}
    return {
        "version": version,
        "current": version == current,
        "rows": (card.get("data") or card.get("training") or {}).get("rows")
        or (card.get("training") or {}).get("n_rows")
        or card.get("interactions"),
        "metric": metric,
        "test": test.get(metric),
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
    kind = _kind(kind)
    version = version or registry.current_version(settings.data_dir, kind)
    if version is None:
        raise CliError(f"no current {kind} model")
    path = registry.kind_dir(settings.data_dir, kind) / version / registry.METADATA_FILE
    if not path.is_file():
        raise CliError(f"no {kind} model version {version}")
    typer.echo(path.read_text())


def report_candidate(
    settings: Any,
    run: Any,
    kind: str,
    *,
    promote: bool,
    json_output: bool,
    print_card: Callable[[str, dict[str, Any]], None],
) -> None:
    """Save a training ``run`` as a candidate of ``kind``, run the promotion gate (unless
    ``promote`` is off) and print the card and the verdict, or both as one JSON object."""
    from tailorbot.models.pipeline import promotion

    saved = promotion.save_candidate(settings.data_dir, run, kind=kind)
    verdict = promotion_verdict(settings, saved.version, kind) if promote else None
    if json_output:
        card = card_of(settings, saved.version, kind)
        typer.echo(json.dumps({**card, "path": str(saved.path), "promotion": verdict}))
        return
    print_card(saved.version, saved.metadata)
    typer.echo(f"saved to {saved.path}")
    if verdict is not None:
        typer.echo(f"promotion: {verdict['outcome']} ({verdict['why']})")


def card_of(settings: Any, version: str, kind: str) -> dict[str, Any]:
    """A version's card as it is now (after the gate wrote its result to it)."""
    from tailorbot.models import registry

    path = registry.kind_dir(settings.data_dir, kind) / version / registry.METADATA_FILE
    return dict(json.loads(path.read_text()))


def promotion_verdict(settings: Any, version: str, kind: str) -> dict[str, Any]:
    """Run the promotion gate for a freshly trained candidate; the outcome and why."""
    from tailorbot.models.pipeline import promotion

    try:
        result = _promote(settings, version, kind)
    except promotion.PromotionRefused as exc:
        return {"outcome": "kept the current version", "why": str(exc), "promoted": False}
    return {"outcome": f"{version} is now current", "why": _passed(result), "promoted": True}


def _promote(settings: Any, version: str, kind: str) -> Any:
    from tailorbot.models.pipeline import promotion
    from tailorbot.models.pipeline.audit import AuditGate

    return promotion.promote(
        settings.data_dir,
        version,
        AuditGate(settings.audit_max_gap, settings.audit_min_rows),
        tolerance=settings.promotion_tolerance,
        attributes=settings.audit_attributes,
        kind=kind,
    )


def _passed(result: Any) -> str:
    figure = f"{result.metric} {result.candidate[result.metric]:.4f} on {result.compared_on}"
    if result.current is not None:
        figure += f" (current: {result.current[result.metric]:.4f})"
    return figure + ("; audit passed" if result.audit is not None else "")


@models_app.command("promote")
@reports_errors
def promote(
    version: Annotated[str, typer.Argument(help="The candidate version.")],
    kind: KindOption = "intent",
    data_dir: DataDirOption = None,
    config: ConfigOption = None,
) -> None:
    """Make a candidate current if it passes the gate (not worse on the same held-out rows;
    intent models: audit passed)."""
    from tailorbot.models import registry
    from tailorbot.models.pipeline import promotion

    settings = load_settings(config, data_dir=data_dir)
    kind = _kind(kind)
    if version not in registry.versions(settings.data_dir, kind):
        raise CliError(f"no {kind} model version {version} under {settings.data_dir}")
    try:
        result = _promote(settings, version, kind)
    except promotion.PromotionRefused as exc:
        raise CliError(str(exc)) from None
    typer.echo(f"{version} is now current: {_passed(result)}")


@models_app.command("rollback")
@reports_errors
def rollback(
    kind: KindOption = "intent", data_dir: DataDirOption = None, config: ConfigOption = None
) -> None:
    """Make the previous current version current again."""
    from tailorbot.models.pipeline import promotion

    settings = load_settings(config, data_dir=data_dir)
    try:
        version = promotion.rollback(settings.data_dir, _kind(kind))
    except promotion.PromotionRefused as exc:
        raise CliError(str(exc)) from None
    typer.echo(f"rolled back: {version} is the current {kind} version again")


def register(app: typer.Typer) -> None:
    app.add_typer(models_app, name="models")
