"""``tailorbot retrain``: retrain when enough new labels arrived (or on a schedule), run the
promotion gate, promote or keep, and say why; ``--watch`` keeps checking."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from tailorbot.cli.common import (
    ConfigOption,
    DataDirOption,
    fail,
    reading_settings,
    reports_errors,
    run_until_signalled,
)


@reports_errors
def retrain(
    watch: Annotated[bool, typer.Option("--watch", help="Keep checking until Ctrl-C.")] = False,
    every: Annotated[
        float, typer.Option("--every", min=1, help="Seconds between checks with --watch.")
    ] = 60.0,
    force: Annotated[bool, typer.Option("--force", help="Retrain now, due or not.")] = False,
    min_labels: Annotated[
        int | None, typer.Option("--min-labels", min=1, help="New labels that trigger it.")
    ] = None,
    search: Annotated[bool, typer.Option("--search/--no-search")] = True,
    trials: Annotated[int, typer.Option("--trials", min=1)] = 6,
    timeout: Annotated[float, typer.Option("--timeout", min=1)] = 120.0,
    base: Annotated[
        str | None, typer.Option("--base", help="'bundled' or a file: training side only.")
    ] = None,
    data_dir: DataDirOption = None,
    config: ConfigOption = None,
) -> None:
    """Check once (or keep watching): retrain if due, gate, promote or keep."""
    from tailorbot.cli.train import base_rows
    from tailorbot.runtime import Runtime
    from tailorbot.stream.retrainer import RetrainWorker

    # A data dir that does not exist is a mistyped one: an error, not a new empty system (an
    # existing one without a log yet is a deployment before its first events: nothing due).
    settings = reading_settings(config, needs=(), data_dir=data_dir, retrain_min_labels=min_labels)
    runtime = Runtime(settings.model_copy(update={"run_worker_in_server": False}))
    options = {
        "search": search,
        "n_trials": trials,
        "timeout_s": timeout,
        "base": base_rows(base, settings.builtin_intents),
    }
    worker = RetrainWorker(
        runtime.log,
        runtime.stores.profiles,
        runtime.stores.features,
        settings,
        runtime.metrics,
        check_s=every,
        train_options=options,
        on_outcome=_echo if watch else None,
    )
    try:
        if not watch:
            outcome = worker.check(force=force)
            if outcome.outcome == "failed":  # a script must see it (watching, it retries)
                fail(f"retrain failed: {outcome.why}")
            _echo(outcome)
            return
        if force:
            worker.check(force=True)
        run_until_signalled(worker, "tailorbot-retrainer")
    finally:
        runtime.stop()


def _echo(outcome: Any) -> None:
    version = f" [{outcome.version}]" if outcome.version else ""
    typer.echo(f"{outcome.outcome}: {outcome.why}{version}")


def register(app: typer.Typer) -> None:
    app.command()(retrain)
