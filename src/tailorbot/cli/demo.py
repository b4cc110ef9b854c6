"""``tailorbot demo`` (the README's main job) and ``tailorbot simulate``."""

from __future__ import annotations

import functools
import json
import tempfile
from pathlib import Path
from typing import Annotated, Any

import typer

from tailorbot.cli.common import (
    ApiKeyOption,
    ConfigOption,
    DataDirOption,
    UrlOption,
    load_settings,
    reports_errors,
)

CustomersOption = Annotated[int, typer.Option("--customers", min=1, help="Simulated customers.")]
ContactsOption = Annotated[int, typer.Option("--contacts", min=1, help="Conversations to replay.")]
SeedOption = Annotated[int, typer.Option("--seed", help="Seed of the simulation.")]
NullWorldOption = Annotated[
    bool,
    typer.Option(
        "--null-world", help="Every simulated customer has the same preferences (no lift to find)."
    ),
]


@reports_errors
def demo(
    data_dir: DataDirOption = None,
    config: ConfigOption = None,
    customers: CustomersOption = 400,
    contacts: ContactsOption = 3000,
    seed: SeedOption = 0,
    holdout: Annotated[
        float, typer.Option("--holdout", min=0.0, max=1.0, help="Share of users in the control.")
    ] = 0.5,
    serve: Annotated[
        bool, typer.Option("--serve", help="Keep the server running afterwards.")
    ] = False,
    json_output: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    null_world: NullWorldOption = False,
) -> None:
    """Train on Banking77, start the engine, replay simulated customers, print what it learned."""
    from tailorbot.api.server import ServerProcess
    from tailorbot.client import Client
    from tailorbot.sim.demo import api_key_of, demo_settings, ensure_model, run_demo

    directory = data_dir or Path(tempfile.mkdtemp(prefix="tailorbot-demo-"))
    settings = demo_settings(load_settings(config, data_dir=directory), holdout, seed)
    say = (lambda _msg: None) if json_output else typer.echo
    started = _clock()
    training = ensure_model(settings, say)  # before the progress bar: training has its own line
    server = ServerProcess(settings).start()
    say(f"engine running at {server.url} (data in {settings.data_dir})")
    try:
        with Client(server.url, api_key=api_key_of(settings)) as client:
            run = functools.partial(
                run_demo,
                client,
                settings,
                customers=customers,
                contacts=contacts,
                seed=seed,
                training=training,
                null_world=null_world,
            )
            report = run() if json_output else _with_progress(run, contacts)
        summary = _summary(report, _clock() - started)
        if json_output:
            typer.echo(json.dumps(summary, indent=2))
        else:
            _print(summary)
        if serve:
            _keep_serving(server)
    finally:
        server.stop()


def _with_progress(run: Any, contacts: int) -> Any:
    with typer.progressbar(length=contacts, label="simulated conversations") as bar:
        done = [0]

        def on_contact(n: int) -> None:
            bar.update(n - done[0])
            done[0] = n

        return run(on_contact=on_contact)


def _keep_serving(server: Any) -> None:
    typer.echo(f"\nserving at {server.url} (API docs: {server.url}/docs); Ctrl-C to stop")
    server.wait()


@reports_errors
def simulate(
    url: UrlOption = None,
    api_key: ApiKeyOption = None,
    config: ConfigOption = None,
    customers: CustomersOption = 200,
    contacts: ContactsOption = 1000,
    seed: SeedOption = 0,
    null_world: NullWorldOption = False,
) -> None:
    """Replay simulated customers against a running server (try a policy offline)."""
    from tailorbot.client import Client
    from tailorbot.sim.demo import api_key_of, build_simulation

    settings = load_settings(config)
    base = url or f"http://{settings.host}:{settings.port}"
    key = api_key or api_key_of(settings)
    with Client(base, api_key=key) as client:
        sim = build_simulation(
            client, settings, customers=customers, seed=seed, null_world=null_world
        )
        with typer.progressbar(length=contacts, label="simulated conversations") as bar:
            result = sim.run(contacts, lambda n: bar.update(1))
        experiment = client.experiment().model_dump()
    typer.echo(json.dumps({**_simulation_summary(result), "experiment": experiment}, indent=2))


def _clock() -> float:
    import time

    return time.perf_counter()


def _simulation_summary(result: Any) -> dict[str, Any]:
    n = len(result.contacts)
    quarter = max(1, n // 4)
    return {
        "conversations": n,
        "seconds": round(result.elapsed_s, 1),
        "intent_accuracy": round(result.intent_accuracy(), 4),
        "fallback_rate": round(result.fallback_rate(), 4),
        "oos_recall": None if result.oos_recall() is None else round(result.oos_recall(), 4),
        "personalize_p50_ms": round(result.latency_ms(50), 2),
        "personalize_p99_ms": round(result.latency_ms(99), 2),
        "preferred_variant_share": {
            "personalized_first_quarter": result.preferred_variant_share(
                "personalized", slice(0, quarter)
            ),
            "personalized_last_quarter": result.preferred_variant_share(
                "personalized", slice(-quarter, None)
            ),
            "control": result.preferred_variant_share("control", slice(None)),
        },
    }


def _summary(report: Any, seconds: float) -> dict[str, Any]:
    metrics = report.training.get("metrics", {})
    split = metrics.get("split", "validation")  # models saved before the pipeline: validation
    return {
        "intent_model": {
            "version": report.training.get("version"),
            f"{split}_accuracy": metrics.get("accuracy"),
            f"{split}_macro_f1": metrics.get("macro_f1"),
        },
        **_simulation_summary(report.simulation),
        "events_processed": report.events_processed,
        "ab": _ab(report.experiment),
        "experiment": report.experiment,
        "total_seconds": round(seconds, 1),
    }


def _ab(experiment: dict[str, Any]) -> dict[str, Any]:
    """The A/B result in short: the control, and each lift with its user-clustered interval."""

    def lift(name: str) -> dict[str, Any] | None:
        found = experiment.get(name)
        if found is None:
            return None
        keys = ("estimate", "ci95", "always_valid_ci95", "cuped")
        return {k: found.get(k) for k in keys}

    return {
        "control": experiment["control"],
        "clusters": experiment["clusters"],
        "csat_lift": lift("csat_lift"),
        "resolution_lift": lift("resolution_lift"),
    }


def _fmt_ci(est: dict[str, Any] | None, pct: bool = False) -> str:
    value = None if est is None else est.get("mean", est.get("estimate"))
    if est is None or value is None:
        return "n/a"
    scale, unit = (100, " %") if pct else (1, "")
    mean = value * scale
    if est.get("ci95") is None:
        return f"{mean:.2f}{unit}"
    lo, hi = (v * scale for v in est["ci95"])
    return f"{mean:.2f}{unit} [{lo:.2f}, {hi:.2f}]"


def _control_words(control: str) -> str:
    from tailorbot.services.decisions.experiment import CONTROL_BANDIT

    if control == CONTROL_BANDIT:
        return "bandit over channel, language and tier: the best non-personal variant"
    return control.replace("fixed_variant:", "fixed variant ")


def _fmt_always_valid(lift: dict[str, Any] | None) -> str:
    if lift is None or lift.get("always_valid_ci95") is None:
        return "n/a"
    low, high = lift["always_valid_ci95"]
    return f"[{low:.2f}, {high:.2f}]"


def _print(s: dict[str, Any]) -> None:
    exp = s["experiment"]
    mine, ctrl = exp["arms"]["personalized"], exp["arms"]["control"]
    share = s["preferred_variant_share"]
    oos = s["oos_recall"]
    lines = [
        "",
        "tailorbot demo — results",
        f"  conversations        {s['conversations']:,} in {s['seconds']} s",
        f"  intent accuracy      {s['intent_accuracy'] * 100:.1f} % (Banking77 test messages)",
        f"  fallback rate        {s['fallback_rate'] * 100:.1f} %"
        + (f" (out-of-scope messages caught: {oos * 100:.1f} %)" if oos is not None else ""),
        f"  personalize latency  p50 {s['personalize_p50_ms']} ms, "
        f"p99 {s['personalize_p99_ms']} ms (over HTTP, as the chatbot saw it)",
        f"  events processed     {s['events_processed']:,}",
        "",
        f"  A/B test, 95 % CI    personalized (n={mine['feedback']})  vs  "
        f"control (n={ctrl['feedback']}), intervals clustered by user",
        f"    control policy     {_control_words(exp['control'])}, "
        "articles ranked by what all customers share",
        f"    CSAT (1-5)         {_fmt_ci(mine['csat'])}  vs  {_fmt_ci(ctrl['csat'])}",
        f"    resolution rate    {_fmt_ci(mine['resolution_rate'], True)}  vs  "
        f"{_fmt_ci(ctrl['resolution_rate'], True)}",
        f"    CSAT lift          {_fmt_ci(exp['csat_lift'])}",
        f"    resolution lift    {_fmt_ci(exp['resolution_lift'], True)}",
        f"    CSAT lift, always-valid interval (valid at every look) "
        f"{_fmt_always_valid(exp['csat_lift'])}",
    ]
    if share["personalized_first_quarter"] is not None:
        lines.append(
            "  bandit learning      customer's preferred variant given "
            f"{share['personalized_first_quarter'] * 100:.0f} % (first quarter) -> "
            f"{share['personalized_last_quarter'] * 100:.0f} % (last quarter); "
            f"control {(share['control'] or 0) * 100:.0f} %"
        )
    lines.append(f"  total time           {s['total_seconds']} s")
    typer.echo("\n".join(lines))


def register(app: typer.Typer) -> None:
    app.command()(demo)
    app.command()(simulate)
