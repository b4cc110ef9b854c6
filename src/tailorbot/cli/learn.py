"""``tailorbot learn``: the intent model through the learning pipeline, from labelled data.

Data files are CSV (``text,intent``, or Banking77's ``text,category``), JSONL
(``{"text": ..., "intent": ...}``), or a training set built by ``tailorbot dataset build``
(split by time). Rows labelled ``out_of_scope`` are negatives. Without ``--data`` it uses
the bundled Banking77 train split plus the bundled out-of-scope train rows. (``tailorbot
train`` trains the served model's own way, without CV, search or the gate.)

``learn`` runs the pipeline of :mod:`tailorbot.models.pipeline.trainer`: a 70/15/15 split,
k-fold cross-validation with an Optuna search (or the defaults with ``--no-search``), one
final test, a candidate version with its card, then the promotion gate (``--no-promote``
leaves it a candidate).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from tailorbot.cli.common import ConfigOption, DataDirOption, fail, load_settings, reports_errors

DataOption = Annotated[
    Path | None,
    typer.Option(
        "--data",
        help="CSV (text,intent or text,category), JSONL, or a built dataset; default: bundled.",
        dir_okay=False,
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON object.")]


@reports_errors
def learn(
    data: DataOption = None,
    data_dir: DataDirOption = None,
    config: ConfigOption = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the splits and the search.")] = 0,
    search: Annotated[
        bool, typer.Option("--search/--no-search", help="Optuna search, or the defaults.")
    ] = True,
    trials: Annotated[int, typer.Option("--trials", min=1, help="Search trial budget.")] = 12,
    timeout: Annotated[
        float, typer.Option("--timeout", min=1, help="Search time budget, seconds.")
    ] = 240.0,
    folds: Annotated[int, typer.Option("--folds", min=2, max=20, help="k of k-fold CV.")] = 5,
    base: Annotated[
        str | None,
        typer.Option(
            "--base",
            help="'bundled' or a CSV/JSONL file: a corpus added to the training side only.",
        ),
    ] = None,
    promote: Annotated[
        bool, typer.Option("--promote/--no-promote", help="Run the promotion gate after.")
    ] = True,
    json_output: JsonOption = False,
) -> None:
    """Train an intent model (CV + search), save it as a candidate and run the gate."""
    from tailorbot.models.pipeline import promotion
    from tailorbot.models.pipeline.trainer import train_intent

    settings = load_settings(config, data_dir=data_dir)
    rows, source = _training_rows(data)
    try:
        run = train_intent(
            rows, search=search, k=folds, n_trials=trials, timeout_s=timeout, seed=seed,
            source=source, base=base_rows(base),
        )  # fmt: skip
    except RuntimeError as exc:  # optuna missing, or no trial finished within the budget
        fail(str(exc))
    saved = promotion.save_candidate(settings.data_dir, run)
    verdict = _gate(settings, saved.version) if promote else None
    if json_output:
        typer.echo(json.dumps({"version": saved.version, "path": str(saved.path),
                               **saved.metadata, "promotion": verdict}))  # fmt: skip
        return
    _print_card(saved.version, saved.metadata)
    typer.echo(f"saved to {saved.path}")
    if verdict is not None:
        typer.echo(f"promotion: {verdict['outcome']} ({verdict['why']})")


def _training_rows(data: Path | None) -> tuple[list[dict[str, Any]], str]:
    from tailorbot.models.intent import default_dataset, load_dataset
    from tailorbot.models.pipeline.dataset import read_rows

    if data is not None and data.suffix in (".jsonl", ".ndjson") and _is_built(data):
        return read_rows(data), str(data)
    dataset = load_dataset(data) if data is not None else default_dataset("train")
    rows = [{"text": t, "intent": i} for t, i in zip(dataset.texts, dataset.labels, strict=True)]
    return rows, dataset.source


def base_rows(base: str | None) -> list[dict[str, Any]]:
    """The ``--base`` corpus as rows: none, the bundled training data, or a file."""
    from tailorbot.models.intent import default_dataset, load_dataset

    if base is None:
        return []
    dataset = default_dataset("train") if base == "bundled" else load_dataset(Path(base))
    return [{"text": t, "intent": i} for t, i in zip(dataset.texts, dataset.labels, strict=True)]


def _is_built(path: Path) -> bool:
    """A file written by `tailorbot dataset build` (its rows carry the event time)."""
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                try:
                    return "epoch" in json.loads(line)
                except ValueError:
                    return False
    return False


def _gate(settings: Any, version: str) -> dict[str, Any]:
    from tailorbot.models.pipeline import promotion
    from tailorbot.models.pipeline.audit import AuditGate

    gate = AuditGate(settings.audit_max_gap, settings.audit_min_rows)
    try:
        result = promotion.promote(
            settings.data_dir,
            version,
            gate,
            tolerance=settings.promotion_tolerance,
            attributes=settings.audit_attributes,
        )
    except promotion.PromotionRefused as exc:
        return {"outcome": "kept the current version", "why": str(exc), "promoted": False}
    return {"outcome": f"{version} is now current", "why": "; ".join(result.reasons) or
            "not worse than the current version, audit passed", "promoted": True}  # fmt: skip


def _print_card(version: str, card: dict[str, Any]) -> None:
    data = card["data"]
    extra = f" + {data['base_rows']} base rows" if data.get("base_rows") else ""
    typer.echo(
        f"trained intent model {version} on {data['rows']} rows from {data['source']}{extra} "
        f"(train/validation/test {data['splits']['train']}/{data['splits']['validation']}/"
        f"{data['splits']['test']}{', by time' if data['by_time'] else ''}) "
        f"in {card['training']['seconds']:.1f} s"
    )
    cv = card["cv"]
    typer.echo(f"{cv['k']}-fold CV on train+validation (mean ± std):")
    for name in ("answer_score", "accuracy", "macro_f1", "fallback_rate"):
        typer.echo(f"  {name:<18} {cv[name]['mean']:.4f} ± {cv[name]['std']:.4f}")
    search = card.get("search")
    if search:
        gain = search["gain_over_defaults"]
        typer.echo(
            f"search: {search['trials']} trials ({search['pruned']} pruned) in "
            f"{search['seconds']:.0f} s; CV answer score {search['best_answer_score']:.4f}"
            + ("" if gain is None else f", {gain:+.4f} over the defaults")
        )
    params = ", ".join(f"{k}={v}" for k, v in card["params"].items())
    typer.echo(f"parameters: {params}")
    test = card["test"]
    typer.echo(f"test ({test['n']} rows, touched once):")
    for name in ("answer_score", "accuracy", "macro_f1", "fallback_rate"):
        typer.echo(f"  {name:<18} {test[name]:.4f}")


def register(app: typer.Typer) -> None:
    app.command("learn")(learn)
