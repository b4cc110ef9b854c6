"""``tailorbot train`` and ``tailorbot evaluate``: the intent model from labelled data.

Data files are CSV (``text,intent``, or Banking77's ``text,category``) or JSONL
(``{"text": ..., "intent": ...}``); rows labelled ``out_of_scope`` are negatives. Without
``--data``, ``train`` uses the bundled Banking77 train split, the built-in conversational
intents the settings keep (``builtin_intents``) and the bundled out-of-scope train rows, and
``evaluate`` the matching test splits. ``--language-data de=german.csv`` (repeatable) trains
one more model per language; messages are routed by their detected language.
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
        help="CSV (text,intent or text,category) or JSONL file; default: the bundled data.",
        dir_okay=False,
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON object.")]


@reports_errors
def train(
    data: DataOption = None,
    data_dir: DataDirOption = None,
    config: ConfigOption = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the validation split.")] = 0,
    validation_fraction: Annotated[
        float,
        typer.Option("--validation-fraction", min=0.01, max=0.9, help="Held-out share per intent."),
    ] = 0.15,
    model: Annotated[
        str | None,
        typer.Option("--model", help="hybrid or tfidf; default: the intent_model setting."),
    ] = None,
    language_data: Annotated[
        list[str] | None,
        typer.Option(
            "--language-data",
            help="LANG=FILE: a model for messages detected in LANG (repeatable).",
        ),
    ] = None,
    json_output: JsonOption = False,
) -> None:
    """Train an intent model, calibrate its fallback and save it as a new version."""
    from tailorbot.models import registry
    from tailorbot.models.intent import default_dataset, load_dataset
    from tailorbot.models.intent.training import INTENT_MODELS, train_language_routed_model

    settings = load_settings(config, data_dir=data_dir)
    kind = model or settings.intent_model
    if kind not in INTENT_MODELS:
        fail(f"--model: unknown intent model {kind!r}; choose one of {sorted(INTENT_MODELS)}")
    extra = _language_files(language_data or [], settings.intent_language)
    dataset = (
        load_dataset(data)
        if data is not None
        else default_dataset("train", builtin_intents=settings.builtin_intents)
    )
    datasets = {settings.intent_language: dataset}
    datasets.update({language: load_dataset(path) for language, path in extra.items()})
    trained = train_language_routed_model(
        datasets,
        default_language=settings.intent_language,
        detect_languages=settings.detect_languages,
        seed=seed,
        validation_fraction=validation_fraction,
        target_oos_recall=settings.fallback_target_recall,
        make_model=INTENT_MODELS[kind],
    )
    saved = registry.save(settings.data_dir, trained.model, trained.metadata, kind="intent")
    meta = saved.metadata
    if json_output:
        typer.echo(json.dumps({"version": saved.version, "path": str(saved.path), **meta}))
        return
    in_scope = [label for label in meta["labels"] if label != "out_of_scope"]
    typer.echo(
        f"trained intent model {saved.version} on {len(dataset)} rows "
        f"({len(in_scope)} intents, {dataset.n_out_of_scope} out_of_scope) "
        f"in {meta['training']['seconds']:.1f} s"
    )
    for original, renamed in sorted(dataset.renamed.items()):
        typer.echo(f"note: intent {original!r} renamed to {renamed!r} (intents are identifiers)")
    metrics = meta["metrics"]
    typer.echo(f"validation ({metrics['n_validation']} rows held out, then refit on all rows):")
    _print_metrics(metrics)
    thresholds = meta["thresholds"]
    typer.echo(
        f"fallback: threshold {thresholds['threshold']:g}, margin {thresholds['margin']:g} "
        f"(maximizing {thresholds['objective']}"
        + (
            f", cost {thresholds['wrong_answer_cost']:g})"
            if thresholds.get("target_oos_recall") is None
            else ")"
        )
    )
    for language in sorted(extra):
        typer.echo(f"{language} model, validation:")
        _print_metrics(meta["languages"][language]["metrics"])
    typer.echo(f"saved to {saved.path}")


@reports_errors
def evaluate(
    data: DataOption = None,
    data_dir: DataDirOption = None,
    config: ConfigOption = None,
    json_output: JsonOption = False,
) -> None:
    """Evaluate the newest intent model on labelled data (default: the bundled test splits)."""
    from tailorbot.models import registry
    from tailorbot.models.intent import default_dataset, evaluate_intent_model, load_dataset

    settings = load_settings(config, data_dir=data_dir)
    dataset = load_dataset(data) if data is not None else default_dataset("test")
    try:
        saved = registry.latest(settings.data_dir, kind="intent")
    except (registry.ModelNotFoundError, registry.ModelLoadError) as exc:
        fail(str(exc))
    model = saved.model
    metrics = evaluate_intent_model(model, dataset.texts, dataset.labels)
    known = set(model.labels)
    unknown = sum(1 for label in dataset.labels if label not in known)
    if unknown:
        typer.echo(
            f"note: {unknown} of {len(dataset)} rows have intents the model does not know "
            "(counted as errors)",
            err=True,
        )
    if json_output:
        typer.echo(json.dumps(metrics.to_dict()))
        return
    typer.echo(
        f"intent model {saved.version} on {dataset.source} "
        f"({metrics.n} rows, {metrics.n_out_of_scope} out_of_scope)"
    )
    _print_metrics(metrics.to_dict())


def _language_files(specs: list[str], default_language: str) -> dict[str, Path]:
    files: dict[str, Path] = {}
    for spec in specs:
        language, sep, path = spec.partition("=")
        if not sep or not path or len(language) != 2 or not language.isalpha():
            fail(f"--language-data: expected LANG=FILE with a 2-letter code, got {spec!r}")
        if language == default_language or language in files:
            fail(f"--language-data: {language!r} given twice (or is the default language)")
        files[language.lower()] = Path(path)
    return files


def _print_metrics(metrics: dict[str, Any]) -> None:
    from tailorbot.models.intent.evaluation import METRIC_NAMES

    for name in METRIC_NAMES:
        value = metrics.get(name)
        if value is not None:
            typer.echo(f"  {name:<18} {value:.4f}")


def register(app: typer.Typer) -> None:
    app.command()(train)
    app.command()(evaluate)
