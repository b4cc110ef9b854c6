"""``tailorbot audit``: how well each segment of customers is served (see
:mod:`tailorbot.models.pipeline.audit`), from the logged history."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from tailorbot.cli.common import (
    CliError,
    ConfigOption,
    DataDirOption,
    reading_settings,
    reports_errors,
)
from tailorbot.cli.history import FromOption, SinceOption, UntilOption, open_history, parse_time
from tailorbot.features.memory import PERSONALIZED_ARM


@reports_errors
def audit(
    source: FromOption = "log",
    since: SinceOption = None,
    until: UntilOption = None,
    model: Annotated[
        str,
        typer.Option("--model", help="'logged' (what was served), 'current' or a version."),
    ] = "logged",
    attribute: Annotated[
        list[str] | None, typer.Option("--attribute", help="Also segment by this attribute.")
    ] = None,
    min_rows: Annotated[int | None, typer.Option("--min-rows", min=1)] = None,
    max_gap: Annotated[float | None, typer.Option("--max-gap", min=0, max=1)] = None,
    gate: Annotated[bool, typer.Option("--gate", help="Exit 1 when the gate fails.")] = False,
    json_output: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    data_dir: DataDirOption = None,
    config: ConfigOption = None,
) -> None:
    """Per segment: intent accuracy, fallback/hand-off, CSAT and resolution by arm, hit rate."""
    from tailorbot.events.codec import event_epoch
    from tailorbot.models.pipeline import audit as audit_mod
    from tailorbot.models.pipeline.dataset import build_dataset
    from tailorbot.models.pipeline.outcomes import decision_rows

    settings = reading_settings(config, data_dir=data_dir)
    attributes = tuple(attribute or settings.audit_attributes)
    checker = audit_mod.AuditGate(
        settings.audit_max_gap if max_gap is None else max_gap,
        settings.audit_min_rows if min_rows is None else min_rows,
    )
    low = parse_time(since, "--since")
    with open_history(settings, source, since, until) as history:
        labelled = build_dataset(history.events, history.profiles, since=low)
        window = [e for e in history.events if low is None or event_epoch(e) >= low.timestamp()]
        decisions = decision_rows(window, history.profiles, history.decision_of)
    labelled, trained_on = _with_predictions(settings, labelled, model)
    report = audit_mod.audit(
        labelled,
        decisions,
        dimensions=(*audit_mod.BASE_DIMENSIONS, *attributes),
        min_rows=checker.min_rows,
    )
    passed, reasons = checker.check(report)
    if gate and report["overall"]["intent_accuracy"] is None:
        raise CliError(
            f"{audit_mod.NOTHING_TO_AUDIT} (model {model}"
            f"{', since ' + since if since else ''}): the gate fails without data"
        )
    report["gate"] = {"passed": passed, "reasons": reasons, "max_gap": checker.max_gap,
                      "model": model, "left_out_trained_rows": trained_on}  # fmt: skip
    if json_output:
        typer.echo(json.dumps(report, indent=2))
    else:
        _print_report(report)
    if gate and not passed:
        raise typer.Exit(1)


def _with_predictions(
    settings: Any, rows: list[dict[str, Any]], model: str
) -> tuple[list[dict[str, Any]], int]:
    """The rows with the intent ``model`` predicts (``logged``: what was served), less the
    rows a pipeline version trained on (auditing a model on its training rows flatters it);
    and how many were left out."""
    from tailorbot.models import registry
    from tailorbot.models.pipeline.promotion import TRAINED_FILE, predicted_rows
    from tailorbot.models.pipeline.trainer import text_key

    if model == "logged":
        return [{**r, "predicted": r.get("logged_intent")} for r in rows], 0
    try:
        if model == "current":
            saved = registry.load_current(settings.data_dir)
        else:
            saved = registry.load(settings.data_dir, model)
    except registry.ModelNotFoundError as exc:
        raise CliError(f"--model: {exc}") from None
    trained_file = saved.path / TRAINED_FILE
    seen = set(trained_file.read_text().split()) if trained_file.is_file() else set()
    unseen = [r for r in rows if text_key(str(r["text"])) not in seen]
    return predicted_rows(saved.model, unseen), len(rows) - len(unseen)


def _fmt(figure: dict[str, Any] | None, digits: int = 3) -> str:
    if figure is None:
        return "-"
    value = f"{figure['value']:.{digits}f}"
    if figure["low"] is None:  # one user: no interval
        return value
    return f"{value} [{figure['low']:.{digits}f},{figure['high']:.{digits}f}]"


def _print_report(report: dict[str, Any]) -> None:
    overall = report["overall"]
    typer.echo(
        f"overall: intent accuracy {_fmt(overall['intent_accuracy'])}, "
        f"{overall['n_decisions']} decisions, fallback {_fmt(overall['fallback_rate'])}, "
        f"hit rate {_fmt(overall['recommendation_hit_rate'])}"
    )
    header = (
        f"{'segment':<24}{'n_lab':>6}  {'accuracy [95% CI]':<22}{'gap to best [CI]':<24}"
        f"{'ratio':>6}  {'fallback':>8}{'handoff':>8}  {'CSAT ctl/pers':<14}"
        f"{'resolved ctl/pers':<18}{'hit':>6}"
    )
    for dimension, segments in report["dimensions"].items():
        typer.echo(f"\n[{dimension}]")
        typer.echo(header)
        for s in segments:
            acc = s["intent_accuracy"]
            gap = (
                "-"
                if not acc or "gap" not in acc
                else (f"{acc['gap']:+.3f} [{acc['gap_low']:+.3f},{acc['gap_high']:+.3f}]")
            )
            ratio = "-" if not acc or acc.get("ratio") is None else f"{acc['ratio']:.2f}"
            typer.echo(
                f"{(s['segment'] + (' (small)' if s['small'] else ''))[:23]:<24}"
                f"{s['n_labelled']:>6}  {_fmt(acc):<22}{gap:<24}{ratio:>6}  "
                f"{_value(s['fallback_rate']):>8}{_value(s['handoff_rate']):>8}  "
                f"{_arms(s['csat_by_arm'], 2):<14}{_arms(s['resolution_by_arm'], 2):<18}"
                f"{_value(s['recommendation_hit_rate']):>6}"
            )
    gate = report["gate"]
    if gate["left_out_trained_rows"]:
        typer.echo(f"\n(model {gate['model']}: {gate['left_out_trained_rows']} labelled rows it "
                   "trained on left out of the accuracy figures)")  # fmt: skip
    verdict = "passed" if gate["passed"] else "FAILED"
    typer.echo(f"\ngate (max gap {gate['max_gap']:.2f}, min rows {report['min_rows']}): {verdict}")
    for reason in gate["reasons"]:
        typer.echo(f"  {reason}")


def _value(figure: dict[str, Any] | None) -> str:
    return "-" if figure is None else f"{figure['value']:.3f}"


def _arms(by_arm: dict[str, Any], digits: int) -> str:
    parts = []
    for arm in ("control", PERSONALIZED_ARM):
        figure = by_arm.get(arm)
        parts.append("-" if figure is None else f"{figure['value']:.{digits}f}")
    return "/".join(parts)


def register(app: typer.Typer) -> None:
    app.command()(audit)
