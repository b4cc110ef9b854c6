"""``tailorbot evaluate-policy``: what other response-variant policies would have achieved,
estimated off-policy from the logged decisions (docs/ope.md); ``tailorbot train-reward``: the
reward model (a ridge regression per variant, the doubly robust estimator's) through the
learning pipeline, kept in the model registry (kind ``reward``).

The decisions come from the archive when one is configured (``archive_url``: it keeps every
decision), else from the online store's decision records (``DecisionStore.scan``; a Redis
store keeps them only ``decision_ttl`` seconds).
"""

from __future__ import annotations

import functools
import json
from datetime import datetime
from typing import Annotated, Any

import typer

from tailorbot.cli.common import (
    CliError,
    ConfigOption,
    DataDirOption,
    load_settings,
    reports_errors,
)
from tailorbot.cli.history import SinceOption, parse_time

ESTIMATORS = ("ips", "snips", "dr")
LOW_ESS = 100  # below this many effective decisions an estimate is a rough guess


@reports_errors
def evaluate_policy(
    data_dir: DataDirOption = None,
    config: ConfigOption = None,
    since: SinceOption = None,
    estimator: Annotated[
        str, typer.Option("--estimator", help="dr (doubly robust, default), snips, ips or all.")
    ] = "dr",
    arm: Annotated[
        str | None,
        typer.Option("--arm", help="Only decisions of this A/B arm (personalized or control)."),
    ] = None,
    folds: Annotated[
        int, typer.Option("--folds", min=2, max=20, help="Cross-fitting folds (by user).")
    ] = 2,
    json_output: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Estimate the value (reward, CSAT, resolution) of candidate variant policies from the log."""
    from tailorbot.models.evaluation.ope import LoggedDecisions, evaluate_policies

    settings = load_settings(config, data_dir=data_dir)
    estimators = _estimators(estimator)
    start = parse_time(since, "--since")
    records = _decision_records(settings, start)
    if arm is not None:
        records = [r for r in records if r.get("arm") == arm]
    log = LoggedDecisions.from_records(records, actions=_kb_variants(settings))
    if len(log) < 2:
        raise CliError(
            f"only {len(log)} logged decisions with feedback and a propensity"
            f"{' since ' + since if since else ''}{' in arm ' + arm if arm else ''}: "
            "nothing to evaluate"
        )
    found = evaluate_policies(log, _candidates(settings, log.actions), estimators, folds=folds)
    rows = [_row(e) for e in found]
    if json_output:
        typer.echo(json.dumps({"decisions": len(log), "policies": rows}))
        return
    _print(rows, len(log))


def _estimators(name: str) -> list[Any]:
    from tailorbot.models.evaluation.ope import (
        DoublyRobust,
        InverseProbabilityWeighting,
        SelfNormalizedIPS,
    )

    every = {
        "ips": InverseProbabilityWeighting(),
        "snips": SelfNormalizedIPS(),
        "dr": DoublyRobust(),
    }
    if name == "all":
        return list(every.values())
    if name not in every:
        raise CliError(f"--estimator: {name!r} is not one of ips, snips, dr, all")
    return [every[name]]


def _decision_records(settings: Any, start: datetime | None) -> list[dict[str, Any]]:
    if settings.archive_url is not None:
        from tailorbot.archive import open_archive

        archive = open_archive(settings.archive_url)
        try:
            return list(archive.iter_decisions(since=start))
        finally:
            archive.close()
    from tailorbot.cli.recs import _exists
    from tailorbot.store import open_stores

    url = settings.resolved_store_url()
    if not _exists(url):
        raise CliError(f"no decision store at {url} (give --data-dir of a server's data)")
    stores = open_stores(url)
    try:
        return list(stores.decisions.scan(start.timestamp() if start is not None else None))
    finally:
        stores.close()


def _kb_variants(settings: Any) -> list[str]:
    from tailorbot.kb.model import VARIANTS

    return list(VARIANTS)


def _candidates(settings: Any, actions: tuple[str, ...]) -> list[Any]:
    """Each fixed variant, a context-free bandit, the A/B control's bandit over the
    non-personal context, and the contextual bandit with the configured settings and two
    others."""
    from tailorbot.features.context import (
        ACTION_KEYS,
        NON_PERSONAL_KEYS,
        AttributeContext,
        feature_names,
    )
    from tailorbot.models.bandit import LinUCB
    from tailorbot.models.evaluation.ope import FixedVariant, LearnedBandit
    from tailorbot.services.decisions.experiment import CONTROL_BANDIT
    from tailorbot.services.decisions.policy import make_bandit

    # The log keeps the chosen variant's action features only (its memory of the customer),
    # not those of the variants it did not choose: the off-line candidates see the rest.
    declared = feature_names(AttributeContext(settings.context_attributes))
    features = [name for name in declared if name not in ACTION_KEYS]
    alpha, epsilon, seed = settings.bandit_alpha, settings.bandit_epsilon, settings.seed
    candidates: list[Any] = [FixedVariant(v) for v in actions]
    candidates.append(
        LearnedBandit(
            "context_free_bandit",
            lambda: LinUCB([], alpha=alpha, epsilon=epsilon, seed=seed),
            contextual=False,
        )
    )
    # The A/B control as the server builds it (LinUCB or Thompson, as the settings say).
    control = functools.partial(make_bandit, settings, NON_PERSONAL_KEYS)
    candidates.append(LearnedBandit(CONTROL_BANDIT, control))
    for a, e in dict.fromkeys([(alpha, epsilon), (0.0, epsilon), (alpha, 0.2)]):
        make = functools.partial(LinUCB, features, alpha=a, epsilon=e, seed=seed)
        candidates.append(LearnedBandit(f"contextual_bandit(alpha={a:g},epsilon={e:g})", make))
    return candidates


def _row(estimate: Any) -> dict[str, Any]:
    """One estimate as JSON: ``value``/``ci95`` null where none can be computed (``note``)."""
    value, ci95 = estimate.value, estimate.ci95
    return {
        "name": estimate.policy,
        "estimator": estimate.estimator,
        "metric": estimate.metric,
        "value": None if value is None else round(value, 5),
        "ci95": None if ci95 is None else [round(ci95[0], 5), round(ci95[1], 5)],
        "n": estimate.n,
        "ess": round(estimate.ess, 1),
        "unsupported": round(estimate.unsupported, 4),
        "note": estimate.note,
    }


def _print(rows: list[dict[str, Any]], decisions: int) -> None:
    typer.echo(f"{decisions} logged decisions with feedback; 95 % intervals clustered by user")
    for metric in dict.fromkeys(r["metric"] for r in rows):
        typer.echo(f"\n{metric}")
        typer.echo(
            f"  {'policy':<42} {'estimator':<9} {'value':>7}  {'95 % interval':<18} {'ess':>7}"
        )
        for r in (r for r in rows if r["metric"] == metric):
            typer.echo(f"  {r['name']:<42} {r['estimator']:<9} {_figures(r)}{_warning(r)}")


def _figures(row: dict[str, Any]) -> str:
    """Value, interval and ESS columns; ``n/a`` where there is no value or no interval."""
    value = "n/a" if row["value"] is None else f"{row['value']:.3f}"
    interval = "n/a" if row["ci95"] is None else "[{:.3f}, {:.3f}]".format(*row["ci95"])
    return f"{value:>7}  {interval:<18}{'':<2} {row['ess']:>7.0f}"


def _warning(row: dict[str, Any]) -> str:
    if row["note"]:
        return f"  ! {row['note']}"
    if row["unsupported"] > 0:
        return f"  ! {row['unsupported']:.0%} of its choices never logged: biased"
    if row["ess"] < LOW_ESS:
        return "  ! low ESS: do not trust"
    return ""


def _positive(value: float | None) -> float | None:
    """``--ridge`` a finite number above 0: a zero penalty leaves the regression singular."""
    if value is not None and not 0 < value < float("inf"):
        raise typer.BadParameter(
            f"{value:g} is not a finite number above 0 (0 leaves the regression singular)"
        )
    return value


@reports_errors
def train_reward(
    data_dir: DataDirOption = None,
    config: ConfigOption = None,
    since: SinceOption = None,
    search: Annotated[
        bool, typer.Option("--search/--no-search", help="Select the ridge on validation.")
    ] = True,
    ridge: Annotated[
        float | None,
        typer.Option(
            "--ridge", callback=_positive, help="With --no-search: the penalty (above 0)."
        ),
    ] = None,
    promote: Annotated[
        bool, typer.Option("--promote/--no-promote", help="Run the promotion gate after.")
    ] = True,
    json_output: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Train the reward model on the logged decisions with feedback: time split 70/15/15,
    the ridge penalty selected on validation, one test, a candidate and the promotion gate."""
    from tailorbot.cli.models import report_candidate
    from tailorbot.models.pipeline.reward import train_reward as train

    if search and ridge is not None:
        raise CliError("--ridge fixes the penalty: add --no-search")
    settings = load_settings(config, data_dir=data_dir)
    records = _decision_records(settings, parse_time(since, "--since"))
    source = "archive" if settings.archive_url is not None else "decision store"
    profiles = _profiles_of(settings, {str(r["user_id"]) for r in records if r.get("user_id")})
    run = train(records, search=search, ridge=ridge, source=source, profiles=profiles)
    report_candidate(settings, run, "reward", promote=promote, json_output=json_output,
                     print_card=_print_reward_card)  # fmt: skip


def _profiles_of(settings: Any, users: set[str]) -> dict[str, dict[str, Any]]:
    """The users' profiles from the online store (their analytics consent decides what
    training may read); none where the store does not exist yet."""
    from tailorbot.cli.recs import _exists
    from tailorbot.store import open_stores

    url = settings.resolved_store_url()
    if not users or not _exists(url):
        return {}
    stores = open_stores(url)
    try:
        return stores.profiles.get_many(sorted(users))
    finally:
        stores.close()


def _print_reward_card(version: str, card: dict[str, Any]) -> None:
    data, selection, test = card["data"], card["validation"], card["test"]
    splits = data["splits"]
    typer.echo(
        f"trained reward model {version} on {data['rows']} decisions with a reward from the "
        f"{data['source']} (by time {splits['train']}/{splits['validation']}/{splits['test']}), "
        f"variants {', '.join(card['actions'])}"
    )
    typer.echo(
        f"selection on validation ({selection['candidates']} candidates): ridge "
        f"{card['params']['ridge']:g}, RMSE {selection['best']['rmse']:.4f}"
    )
    typer.echo(
        f"test ({test['n']} decisions, touched once): RMSE {test['rmse']:.4f}, MAE "
        f"{test['mae']:.4f}; the mean reward as a constant: RMSE {test['baseline_rmse']:.4f}"
    )


def register(app: typer.Typer) -> None:
    app.command("evaluate-policy")(evaluate_policy)
    app.command("train-reward")(train_reward)
