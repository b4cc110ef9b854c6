"""``tailorbot evaluate-recs``: replay the event log and score the article recommender;
``tailorbot train-recs``: train the collaborative-filtering model through the learning
pipeline (time split of the log, selection on validation, one test, the promotion gate).

For every session that ended resolved by an article, the hybrid recommender (statistics
learned from earlier events only), the intent-only baseline and the popularity baseline are
asked for their top k at the session's first customer message; the command prints hit
rate@k and NDCG@k of each with 95 % user-bootstrap intervals. ``--split time`` trains the
CF model on the first 70 % of the log by time and counts only the sessions after it.
``train-recs`` leaves out the events of users whose profile withholds analytics consent.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from tailorbot.cli.common import (
    CliError,
    ConfigOption,
    DataDirOption,
    load_settings,
    reports_errors,
)
from tailorbot.cli.history import FromOption, SinceOption, UntilOption

LogUrlOption = Annotated[
    str | None,
    typer.Option("--log-url", help="Event log to replay (default: the data dir's sqlite log)."),
]
StoreUrlOption = Annotated[
    str | None,
    typer.Option(
        "--store-url",
        help="Online store to read user profiles (tier, language) from; default: the data "
        "dir's, when it exists.",
    ),
]
KbOption = Annotated[
    Path | None,
    typer.Option("--kb", help="Knowledge-base folder (default: the configured or bundled KB)."),
]


@reports_errors
def evaluate_recs(
    data_dir: DataDirOption = None,
    log_url: LogUrlOption = None,
    store_url: StoreUrlOption = None,
    kb_dir: KbOption = None,
    k: Annotated[int, typer.Option("--k", min=1, max=100, help="Length of the list.")] = 3,
    split: Annotated[
        str,
        typer.Option(
            "--split",
            help="'none': every session, no CF model; 'time': train the CF model on the first "
            "--train-share of the log by time, score the sessions after it.",
        ),
    ] = "none",
    train_share: Annotated[
        float, typer.Option("--train-share", min=0.05, max=0.95, help="With --split time.")
    ] = 0.7,
    bootstrap: Annotated[
        int, typer.Option("--bootstrap", min=0, max=100_000, help="User-level resamples.")
    ] = 1000,
    config: ConfigOption = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Hit rate@k and NDCG@k of the hybrid recommender beside intent-only and popularity."""
    if split not in ("none", "time"):
        raise CliError(f"--split: expected 'none' or 'time', got {split!r}")
    from tailorbot.features.params import FeatureParams
    from tailorbot.kb import default_kb_dir, load_kb
    from tailorbot.log import open_log
    from tailorbot.models.recommend.evaluation import evaluate_recommendations
    from tailorbot.store import open_stores

    settings = load_settings(config, data_dir=data_dir, log_url=log_url, store_url=store_url)
    kb = load_kb(kb_dir or settings.kb_dir or default_kb_dir())
    url = settings.resolved_log_url()
    _require_sqlite_file(url, "event log")
    log = open_log(url, settings.partitions)
    stores = None
    if _exists(settings.resolved_store_url()):
        stores = open_stores(settings.resolved_store_url(), settings.store_read_cache_bytes)
    try:
        result = evaluate_recommendations(
            log,
            kb,
            k=k,
            profiles=stores.profiles if stores is not None else None,
            features=stores.features if stores is not None else None,
            intent_fn=_intent_fn(settings.data_dir),
            params=FeatureParams.of(settings),
            train_share=train_share if split == "time" else None,
            bootstrap=bootstrap,
            seed=settings.seed or 0,
        )
    finally:
        log.close()
        if stores is not None:
            stores.close()
    if json_output:
        typer.echo(json.dumps(result.to_dict()))
        return
    _print_report(result, url, k)
    notes = {
        "resolved sessions without a customer message before (not counted)": result.unasked,
        "counted sessions resolved by an article the KB does not hold": result.unknown_articles,
        "counted sessions asked without an intent": result.without_intent,
        "counted sessions resolved by an article the user had marked unhelpful before "
        "(the hybrid never re-offers it)": result.vetoed,
    }
    for text, count in notes.items():
        if count:
            typer.echo(f"note: {count} {text}", err=True)


def _print_report(result: Any, url: str, k: int) -> None:
    typer.echo(
        f"replayed {result.events} events from {url}: {result.sessions} sessions of "
        f"{result.users} users resolved by an article (k={result.k})"
    )
    if result.split:
        typer.echo(
            f"time split: CF trained on the first {result.split['train_events']} events "
            f"({result.split['train_share']:.0%}); sessions after them scored"
        )
    typer.echo(f"  {'policy':<12} {'hit_rate@' + str(k):>11} {'95% CI':>17} {'ndcg@' + str(k):>8}")
    for name, score in result.policies.items():
        hit, ndcg = (result.intervals.get(name, {}).get(m) for m in ("hit_rate", "ndcg"))
        typer.echo(
            f"  {name:<12} {score.hit_rate:>11.4f} {_ci(hit):>17} {score.ndcg:>8.4f} {_ci(ndcg)}"
        )
    lift = result.lift_intervals
    if result.vetoed:
        kept = {n: f"{v['hit_rate']:.4f}" for n, v in result.without_vetoed.items()}
        typer.echo(f"  hit_rate@{k} without the vetoed sessions (below): {kept}")
    typer.echo(
        f"  lift over control: hit rate {result.lift('hit_rate'):+.4f} "
        f"{_ci(lift.get('hit_rate'))}, NDCG {result.lift('ndcg'):+.4f} {_ci(lift.get('ndcg'))}"
    )


def _ci(pair: list[float] | None) -> str:
    return f"[{pair[0]:.3f}, {pair[1]:.3f}]" if pair else ""


def _exists(url: str) -> bool:
    """False for a sqlite URL whose file is missing (opening it would create an empty one)."""
    from tailorbot._sqlite import parse_sqlite_url

    if not url.lower().startswith("sqlite://"):
        return True
    return parse_sqlite_url(url)[0].is_file()


def _require_sqlite_file(url: str, what: str) -> None:
    if not _exists(url):
        raise CliError(f"no {what} at {url} (give --data-dir or --log-url of an existing log)")


def _intent_fn(data_dir: Path) -> Any:
    """The newest saved intent model as ``text -> (intent, confidence)``, if there is one;
    it labels customer messages that were logged without an intent."""
    from tailorbot.models import registry
    from tailorbot.models.intent.base import OUT_OF_SCOPE_REASONS

    try:
        model = registry.load_current(data_dir, kind="intent").model
    except (registry.ModelNotFoundError, registry.ModelLoadError):
        return None

    def predict(text: str) -> tuple[str | None, float]:
        prediction = model.predict_one(text)
        if prediction.fallback.reason in OUT_OF_SCOPE_REASONS:
            return None, 0.0
        return prediction.name, float(prediction.confidence)

    return predict


@reports_errors
def train_recs(
    data_dir: DataDirOption = None,
    log_url: LogUrlOption = None,
    source: FromOption = "log",
    since: SinceOption = None,
    until: UntilOption = None,
    search: Annotated[
        bool,
        typer.Option("--search/--no-search", help="Select the parameters on validation."),
    ] = True,
    neighbours: Annotated[
        int | None,
        typer.Option("--neighbours", min=1, max=1000, help="With --no-search: neighbours kept."),
    ] = None,
    shrinkage: Annotated[
        float | None, typer.Option("--shrinkage", min=0.0, help="With --no-search: shrinkage.")
    ] = None,
    promote: Annotated[
        bool, typer.Option("--promote/--no-promote", help="Run the promotion gate after.")
    ] = True,
    config: ConfigOption = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Train the collaborative-filtering model (item-kNN) through the learning pipeline: time
    split 70/15/15 of the log, selection on validation, one test, a candidate in the model
    registry and the promotion gate; a running server picks a promoted one up."""
    from tailorbot.cli.history import open_history, parse_time
    from tailorbot.cli.models import report_candidate
    from tailorbot.events.codec import event_epoch
    from tailorbot.models.pipeline.cf import train_cf
    from tailorbot.models.recommend.cf_training import CF_KIND

    given = {"neighbours": neighbours, "shrinkage": shrinkage}
    fixed = {name: value for name, value in given.items() if value is not None}
    if search and fixed:
        raise CliError("--neighbours and --shrinkage fix the parameters: add --no-search")
    settings = load_settings(config, data_dir=data_dir, log_url=log_url)
    if source == "log":
        _require_sqlite_file(settings.resolved_log_url(), "event log")
    low = parse_time(since, "--since")
    with open_history(settings, source, since, until) as history:
        events = [e for e in history.events if low is None or event_epoch(e) >= low.timestamp()]
        profiles = history.profiles  # a user who withheld analytics consent is left out
    run = train_cf(events, profiles=profiles, search=search, params=fixed, source=source)
    report_candidate(settings, run, CF_KIND, promote=promote, json_output=json_output,
                     print_card=_print_cf_card)  # fmt: skip


def _print_cf_card(version: str, card: dict[str, Any]) -> None:
    data, selection, test = card["data"], card["validation"], card["test"]
    splits = data["splits"]
    typer.echo(
        f"trained item_knn model {version} on {data['events']} events from {data['source']}: "
        f"{card['users']} users, {card['interactions']} user-article interactions, "
        f"{card['articles_with_neighbours']} articles with neighbours; sessions resolved after "
        f"an article history, by time: {splits['train']} in the fitting window, "
        f"{splits['validation']} validate, {splits['test']} test"
    )
    best, defaults = selection["best"], selection["defaults"]
    typer.echo(
        f"selection on validation ({selection['candidates']} candidates, {selection['metric']}):"
        f" {best['hit_rate']:.4f} (NDCG {best['ndcg']:.4f})"
        + ("" if defaults is None else f", defaults {defaults['hit_rate']:.4f}")
    )
    typer.echo("parameters: " + ", ".join(f"{k}={v}" for k, v in card["params"].items()))
    typer.echo(
        f"test ({test['n']} sessions, touched once): hit_rate@{card['k']} {test['hit_rate']:.4f},"
        f" ndcg@{card['k']} {test['ndcg']:.4f}; popularity {test['popularity_hit_rate']:.4f}"
    )


def register(app: typer.Typer) -> None:
    app.command("evaluate-recs")(evaluate_recs)
    app.command("train-recs")(train_recs)
