"""``tailorbot serve`` (the HTTP API) and ``tailorbot worker`` (a standalone stream worker)."""

from __future__ import annotations

import enum
import os
import shutil
import socket
import tempfile
from pathlib import Path
from typing import Annotated, Any

import typer

from tailorbot._ports import held_port
from tailorbot.cli.common import (
    ConfigOption,
    DataDirOption,
    fail,
    load_settings,
    reports_errors,
    run_until_signalled,
)
from tailorbot.config import Settings

# The import string uvicorn's worker processes build the app from (each its own runtime).
APP_FACTORY = "tailorbot.api.app:create_app"
LOG_LEVELS = ("debug", "info", "warning", "error", "critical")


class WorkerMode(enum.StrEnum):
    process = "process"
    thread = "thread"
    none = "none"


def _preflight(settings: Settings, *, kb: bool = False) -> None:
    """Open the backends once (and with ``kb`` load the knowledge base as the server will),
    so that a bad URL, a down server or a broken KB is one clear line, not a process that
    starts and then fails every request or retries forever."""
    from tailorbot.kb.loader import KBError
    from tailorbot.runtime import Runtime
    from tailorbot.services.decisions.loader import control_variant_problem
    from tailorbot.services.decisions.responses import ResponseComposer

    runtime = Runtime(settings)
    try:
        report = runtime.health.readiness(detail=True)
        broken = [
            f"{name} {state}"
            for name, state in report["checks"].items()
            if "unreachable" in str(state)
        ]
        if broken:
            fail("; ".join(broken))
        if kb:
            try:
                runtime.kb.seed()  # kb_dir changed since it was copied in: a new live version
                _, knowledge = runtime.kb.load()  # what the decision service loads first
            except KBError as exc:
                more = f" (+{len(exc.issues) - 1} more)" if len(exc.issues) > 1 else ""
                fail(f"knowledge base: {exc.issues[0]}{more}; see `tailorbot kb check`")
            variants = ResponseComposer(knowledge).variant_names
            problem = control_variant_problem(settings, variants)
            if problem is not None:
                fail(problem)
    finally:
        runtime.stop()


def _held_listen(host: str, port: int, what: str) -> socket.socket:
    """``host:port`` bound now (one line and exit status 1 when it cannot be) and held until
    the caller closes the socket: uvicorn (or the metrics server) binds only after the
    start, and its failure was a few log lines and exit status 3; released after the check,
    the port was taken in a benchmark's run by a socket bound meanwhile (see
    :func:`~tailorbot._ports.held_port`)."""
    try:
        return held_port(host, port)
    except OSError as exc:
        fail(f"{what}: cannot listen on {host}:{port}: {exc.strerror or exc}")


@reports_errors
def serve(
    host: Annotated[
        str | None, typer.Option(help="Interface to bind (default: 127.0.0.1).")
    ] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on (default: 8000).")] = None,
    data_dir: DataDirOption = None,
    workers: Annotated[int, typer.Option(min=1, help="Server processes.")] = 1,
    config: ConfigOption = None,
    log_level: Annotated[
        str | None,
        typer.Option(
            help="Log level (default: the log_level setting, info; access lines are info)."
        ),
    ] = None,
    worker_mode: Annotated[
        WorkerMode,
        typer.Option(
            "--worker",
            help="Where the stream worker runs: its own process (default), a thread of each "
            "server process, or none (run `tailorbot worker` yourself).",
        ),
    ] = WorkerMode.process,
) -> None:
    """Serve the HTTP API, with a stream worker in a process of its own."""
    settings = load_settings(config, host=host, port=port, data_dir=data_dir)
    log_level = (log_level or settings.log_level).lower()
    if log_level not in LOG_LEVELS:
        fail(f"--log-level {log_level!r} is not one of {', '.join(LOG_LEVELS)}")
    held = _held_listen(settings.host, settings.port, "--host/--port")
    try:
        _serve(settings, workers, log_level, worker_mode)
    finally:
        held.close()


def _serve(settings: Settings, workers: int, log_level: str, worker_mode: WorkerMode) -> None:
    import uvicorn

    from tailorbot.telemetry.logs import configure_logging

    _preflight(settings, kb=True)
    configure_logging(settings, level=log_level)  # once it will serve (not for a failed start)
    supervised = None
    if worker_mode is WorkerMode.process:
        from tailorbot.cli.supervise import WorkerProcess

        supervised = WorkerProcess(settings)
        settings = settings.model_copy(
            update={"run_worker_in_server": False, "worker_metrics_url": supervised.metrics_url}
        )
        supervised.start()
    elif worker_mode is WorkerMode.none:
        settings = settings.model_copy(update={"run_worker_in_server": False})
    elif worker_mode is WorkerMode.thread:
        settings = settings.model_copy(update={"run_worker_in_server": True})
    try:
        _run_servers(uvicorn, settings, workers, log_level)
    finally:
        if supervised is not None:
            supervised.stop()


def _run_servers(uvicorn: Any, settings: Settings, workers: int, log_level: str) -> None:
    typer.echo(
        f"tailorbot {'with ' + str(workers) + ' processes ' if workers > 1 else ''}on "
        f"http://{settings.host}:{settings.port} (docs at /docs; data in {settings.data_dir})"
    )
    if workers == 1:
        from tailorbot.api.app import create_app

        uvicorn.run(
            create_app(settings),
            host=settings.host,
            port=settings.port,
            log_level=log_level,
            log_config=None,  # uvicorn's loggers go through configure_logging's handler
            access_log=False,  # the middleware writes the access line (no raw paths)
        )
        return
    from tailorbot.telemetry.siblings import folder_fits

    # The processes share the port, and a scrape reaches one of them: each serves its
    # metrics to the others through this folder, and /metrics answers their sum.
    siblings = Path(tempfile.mkdtemp(prefix="tailorbot-metrics-"))  # mode 0700
    if not folder_fits(siblings):
        shutil.rmtree(siblings, ignore_errors=True)
        fail(
            f"the temporary folder {siblings.parent} is too long a path for the server "
            "processes' metrics sockets (Unix sockets): set TMPDIR to a shorter one"
        )
    settings = settings.model_copy(update={"metrics_siblings_dir": siblings})
    # Each process calls create_app() and rebuilds the same settings from the environment.
    os.environ.update(settings.to_env())
    try:
        uvicorn.run(
            APP_FACTORY,
            factory=True,
            host=settings.host,
            port=settings.port,
            workers=workers,
            log_level=log_level,
            log_config=None,
            access_log=False,
        )
    finally:
        shutil.rmtree(siblings, ignore_errors=True)


def _inherited_socket(fd: int) -> Any:
    """The listening socket behind ``--metrics-fd``, or one line and exit status 1."""
    from tailorbot.telemetry.worker_metrics import inherited_listener

    try:
        return inherited_listener(fd)
    except ValueError as exc:
        fail(f"--metrics-fd {fd}: {exc}")


@reports_errors
def worker(
    data_dir: DataDirOption = None,
    config: ConfigOption = None,
    metrics_port: Annotated[
        int | None,
        typer.Option(
            "--metrics-port",
            min=1,
            max=65535,
            help="Serve this worker's Prometheus metrics on http://METRICS_HOST:PORT/metrics.",
        ),
    ] = None,
    metrics_host: Annotated[
        str,
        typer.Option(
            "--metrics-host",
            help="Address the metrics listen on (loopback by default: not the API's host).",
        ),
    ] = "127.0.0.1",
    metrics_fd: Annotated[
        int | None,
        typer.Option(
            "--metrics-fd",
            min=0,
            hidden=True,  # `tailorbot serve` hands its worker the socket it holds
            help="Serve the metrics on this inherited listening socket.",
        ),
    ] = None,
    member_id: Annotated[
        str | None,
        typer.Option(
            "--member-id",
            help="This worker's name in its consumer groups (default: new at each start). "
            "A worker restarted under the name of one that died takes its partitions back "
            "at once, not after the dead one's session lapses (embedded and Redis logs). "
            "Never give one name to two live workers.",
        ),
    ] = None,
) -> None:
    """Run a stream worker until SIGINT/SIGTERM.

    It applies logged events to the feature store, sharing the work with the other workers
    of its consumer group. With archive_url set it also runs an archive worker, which copies
    the log into the archive in a consumer group of its own.
    """
    from tailorbot.runtime import Runtime
    from tailorbot.stream.archiver import archive_group
    from tailorbot.stream.thread import WorkerThread
    from tailorbot.telemetry.logs import configure_logging

    settings = load_settings(config, data_dir=data_dir)
    from tailorbot.telemetry.tracing import Tracing

    if member_id is not None and not member_id.strip():
        fail("--member-id: must not be empty")
    if metrics_port is not None and metrics_fd is not None:
        fail("--metrics-port and --metrics-fd: give one of them")
    metrics_socket = None
    if metrics_port is not None:  # bound now, listening once the worker runs
        metrics_socket = _held_listen(metrics_host, metrics_port, "--metrics-host/--metrics-port")
    elif metrics_fd is not None:
        metrics_socket = _inherited_socket(metrics_fd)
    _preflight(settings)  # as serve does: a down backend is one line, not endless retries
    runtime = Runtime(settings, tracing=Tracing.from_env())  # tracing only with OTEL_* set
    configure_logging(settings)
    # this process is the worker's own: it may pause the garbage collector
    stream_worker = runtime.stream_worker(member_id, pause_gc=True)
    typer.echo(f"tailorbot worker in group {settings.consumer_group!r}; Ctrl-C stops it")
    archiver = runtime.archive_worker(member_id)  # a group of its own: the same name is free
    try:
        if metrics_socket is not None:
            if metrics_port is not None:
                metrics_socket.listen()
            host, port = metrics_socket.getsockname()[:2]
            where = f"{host}:{port}"
            from tailorbot.telemetry.worker_metrics import serve_exposition

            serve_exposition(metrics_socket, runtime.metrics.registry)
            typer.echo(f"metrics on http://{where}/metrics")
        if archiver is not None:
            runtime.threads["archiver"] = WorkerThread(archiver, "tailorbot-archive-worker")
            runtime.threads["archiver"].start()
            typer.echo(f"archiving in group {archive_group(settings)!r}")
        if settings.retrain_in_worker:
            from tailorbot.stream.retrainer import RetrainWorker

            retrainer = RetrainWorker(
                runtime.log,
                runtime.stores.profiles,
                runtime.stores.features,
                settings,
                runtime.metrics,
            )
            runtime.threads["retrainer"] = WorkerThread(retrainer, "tailorbot-retrainer")
            runtime.threads["retrainer"].start()
            typer.echo(f"retraining after {settings.retrain_min_labels} new labels")
        run_until_signalled(stream_worker, "tailorbot-stream-worker")
    finally:
        stream_worker.close()
        runtime.stop()
        if runtime.tracing is not None:
            runtime.tracing.shutdown()  # export the buffered spans
    typer.echo("worker stopped")


def register(app: typer.Typer) -> None:
    app.command()(serve)
    app.command()(worker)
