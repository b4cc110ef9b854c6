"""``tailorbot train`` and ``tailorbot evaluate``: the intent model through the learning
pipeline.

Data files are CSV (``text,intent``, or Banking77's ``text,category``), JSONL
(``{"text": ..., "intent": ...}``) or a training set built by ``tailorbot dataset build``
(split by time); rows labelled ``out_of_scope`` are negatives. Without ``--data``, ``train``
uses the bundled Banking77 train split, the built-in conversational intents the settings keep
(``builtin_intents``) and the bundled out-of-scope train rows, and ``evaluate`` the matching
test splits. ``--language-data de=german.csv`` (repeatable) trains one more model per
language, each through the pipeline on its own; messages are routed by their detected
language. ``--model`` picks the model kind (default: the ``intent_model`` setting, the hybrid
TF-IDF ⊕ static embeddings model).

``train`` runs :mod:`tailorbot.models.pipeline`: a 70/15/15 split, k-fold cross-validation
with an Optuna search (or the defaults with ``--no-search``), one final test, a candidate
version with its card, then the promotion gate (``--no-promote`` leaves it a candidate).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from tailorbot.cli.common import (
    CliError,
    ConfigOption,
    DataDirOption,
    fail,
    load_settings,
    reports_errors,
)

if TYPE_CHECKING:
    from tailorbot.models.intent.dataset import IntentDataset

DataOption = Annotated[
    Path | None,
    typer.Option(
        "--data",
        help="CSV (text,intent or text,category), JSONL, or a built dataset; default: bundled.",
        dir_okay=False,
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON object.")]
ModelOption = Annotated[
    str | None,
    typer.Option(
        "--model", help="hybrid, hybrid+minilm or tfidf; default: the intent_model setting."
    ),
]
LanguageDataOption = Annotated[
    list[str] | None,
    typer.Option(
        "--language-data", help="LANG=FILE: a model for messages detected in LANG (repeatable)."
    ),
]
SearchOption = Annotated[
    bool, typer.Option("--search/--no-search", help="Optuna search, or the defaults.")
]
BaseOption = Annotated[
    str | None,
    typer.Option(
        "--base", help="'bundled' or a CSV/JSONL file: a corpus added to the training side only."
    ),
]
PromoteOption = Annotated[
    bool, typer.Option("--promote/--no-promote", help="Run the promotion gate after.")
]
FIGURES = ("answer_score", "accuracy", "macro_f1", "fallback_rate")


@reports_errors
def train(
    data: DataOption = None,
    data_dir: DataDirOption = None,
    config: ConfigOption = None,
    model: ModelOption = None,
    language_data: LanguageDataOption = None,
    seed: Annotated[
        int,
        # numpy's seeds are 0..2**32-1: typer's bounds name the option, numpy's error did not
        typer.Option("--seed", min=0, max=2**32 - 1, help="Seed of the splits and the search."),
    ] = 0,
    search: SearchOption = True,
    trials: Annotated[int, typer.Option("--trials", min=1, help="Search trial budget.")] = 12,
    timeout: Annotated[
        float, typer.Option("--timeout", min=1, help="Search time budget, seconds.")
    ] = 240.0,
    folds: Annotated[int, typer.Option("--folds", min=2, max=20, help="k of k-fold CV.")] = 5,
    base: BaseOption = None,
    promote: PromoteOption = True,
    json_output: JsonOption = False,
) -> None:
    """Train an intent model (CV + search), save it as a candidate and run the gate."""
    from tailorbot.cli.models import report_candidate
    from tailorbot.models.pipeline.routed import train_routed

    settings = load_settings(config, data_dir=data_dir)
    kind = _model_kind(model or settings.intent_model)
    files = {settings.intent_language: data, **_language_files(language_data or [], settings)}
    loaded = {language: training_rows(path, settings.builtin_intents)
              for language, path in files.items()}  # fmt: skip
    try:
        run = train_routed(
            {language: rows for language, (rows, _, _) in loaded.items()},
            default_language=settings.intent_language, detect_languages=settings.detect_languages,
            sources={language: source for language, (_, source, _) in loaded.items()},
            search=search, k=folds, n_trials=trials, timeout_s=timeout, seed=seed, model=kind,
            base=base_rows(base, settings.builtin_intents),
            target_oos_recall=settings.fallback_target_recall,
        )  # fmt: skip
    except RuntimeError as exc:  # optuna missing, or no trial finished within the budget
        fail(str(exc))

    def print_with_notes(version: str, card: dict[str, Any]) -> None:
        print_card(version, card)
        for language, (_, _, renamed) in loaded.items():
            for original, new in sorted(renamed.items()):
                typer.echo(f"note: {language} intent {original!r} renamed to {new!r} (identifiers)")

    report_candidate(settings, run, "intent", promote=promote, json_output=json_output,
                     print_card=print_with_notes)  # fmt: skip


def _model_kind(name: str) -> str:
    from tailorbot.models.intent.training import INTENT_MODELS

    if name not in INTENT_MODELS:
        fail(f"--model: unknown intent model {name!r}; choose one of {sorted(INTENT_MODELS)}")
    return name


def training_rows(
    data: Path | None, builtin_intents: Any = None
) -> tuple[list[dict[str, Any]], str, dict[str, str]]:
    """Rows, their source and the renamed labels: a built dataset as it is, a CSV/JSONL file
    (labels normalized), or the bundled training data."""
    from tailorbot.models.intent import load_dataset
    from tailorbot.models.pipeline.dataset import read_rows

    if data is not None and data.suffix in (".jsonl", ".ndjson") and _is_built(data):
        return read_rows(data), str(data), {}
    dataset = load_dataset(data) if data is not None else bundled("train", builtin_intents)
    rows = [{"text": t, "intent": i} for t, i in zip(dataset.texts, dataset.labels, strict=True)]
    return rows, dataset.source, dict(dataset.renamed)


def bundled(split: str, builtin_intents: Any = None) -> IntentDataset:
    """The bundled ``split`` with the built-in intents the settings keep (None: all of them),
    one place for ``train`` and ``evaluate``: the other built-ins become out_of_scope."""
    from tailorbot.models.intent import default_dataset
    from tailorbot.models.intent.dataset import BUILTIN_INTENTS

    kept = BUILTIN_INTENTS if builtin_intents is None else builtin_intents
    return default_dataset(split, builtin_intents=kept)


def base_rows(base: str | None, builtin_intents: Any = None) -> list[dict[str, Any]]:
    """The ``--base`` corpus as rows: none, the bundled training data, or a file."""
    if base is None:
        return []
    return training_rows(None if base == "bundled" else Path(base), builtin_intents)[0]


def _is_built(path: Path) -> bool:
    """A file written by `tailorbot dataset build` (its rows carry the event time)."""
    try:
        with path.open(encoding="utf-8") as handle:
            for line in handle:
                if line.strip():
                    try:
                        return "epoch" in json.loads(line)
                    except ValueError:
                        return False
    except UnicodeDecodeError as exc:
        raise CliError(f"{path}: not UTF-8 text ({exc.reason})") from None
    return False


def print_card(version: str, card: dict[str, Any]) -> None:
    """The card of an intent model version, for people."""
    data = card["data"]
    extra = f" + {data['base_rows']} base rows" if data.get("base_rows") else ""
    splits = data["splits"]
    typer.echo(
        f"trained intent model {version} ({card.get('default_model', card['model'])}) on "
        f"{data['rows']} rows from {data['source']}{extra} (train/validation/test "
        f"{splits['train']}/{splits['validation']}/{splits['test']}"
        f"{', by time' if data['by_time'] else ''}) in {card['training']['seconds']:.1f} s"
    )
    languages = card.get("languages") or {}
    for language, figures in languages.items():
        if len(languages) > 1:
            typer.echo(f"[{language}] {figures['data']['rows']} rows from "
                       f"{figures['data']['source']}")  # fmt: skip
        _print_selection(figures)
    test = card["test"]
    typer.echo(f"test ({test['n']} rows, touched once"
               f"{', every language, routed' if len(languages) > 1 else ''}):")  # fmt: skip
    for name in (*FIGURES, "in_scope_accuracy", "oos_recall", "oos_precision"):
        if test.get(name) is not None:
            typer.echo(f"  {name:<18} {test[name]:.4f}")


def _print_selection(card: dict[str, Any]) -> None:
    cv = card["cv"]
    typer.echo(f"{cv['k']}-fold CV on train+validation (mean ± std):")
    for name in FIGURES:
        typer.echo(f"  {name:<18} {cv[name]['mean']:.4f} ± {cv[name]['std']:.4f}")
    search = card.get("search")
    if search:
        gain = search["gain_over_defaults"]
        typer.echo(
            f"search: {search['trials']} trials ({search['pruned']} pruned) in "
            f"{search['seconds']:.0f} s; CV answer score {search['best_answer_score']:.4f}"
            + ("" if gain is None else f", {gain:+.4f} over the defaults")
        )
    typer.echo("parameters: " + ", ".join(f"{k}={_short(v)}" for k, v in card["params"].items()))
    thresholds = card["thresholds"]
    floor = thresholds.get("min_similarity")
    typer.echo(
        f"fallback: threshold {thresholds['threshold']:g}, margin {thresholds['margin']:g}"
        + ("" if floor is None else f", similarity floor {floor:.3f}")
        + f" (chosen on {thresholds['chosen_on']}"
        + (f", maximizing {thresholds['objective']})" if thresholds.get("objective") else ")")
    )
    test = card["test"]
    typer.echo(f"  own test split: accuracy {test['accuracy']:.4f}, answer score "
               f"{test['answer_score']:.4f} ({test['n']} rows)")  # fmt: skip


def _short(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


@reports_errors
def evaluate(
    data: DataOption = None,
    data_dir: DataDirOption = None,
    config: ConfigOption = None,
    json_output: JsonOption = False,
) -> None:
    """Evaluate the current intent model on labelled data (default: the bundled test splits)."""
    from tailorbot.models import registry
    from tailorbot.models.intent import evaluate_intent_model, load_dataset

    settings = load_settings(config, data_dir=data_dir)
    kept = settings.builtin_intents  # those `train` kept; the others are out_of_scope
    dataset = load_dataset(data) if data is not None else bundled("test", kept)
    try:
        saved = registry.load_current(settings.data_dir, kind="intent")
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


def _language_files(specs: list[str], settings: Any) -> dict[str, Path]:
    files: dict[str, Path] = {}
    for spec in specs:
        language, sep, path = spec.partition("=")
        if not sep or not path or len(language) != 2 or not language.isalpha():
            fail(f"--language-data: expected LANG=FILE with a 2-letter code, got {spec!r}")
        language = language.lower()
        if language == settings.intent_language or language in files:
            fail(f"--language-data: {language!r} given twice (or is the default language)")
        files[language] = Path(path)
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
