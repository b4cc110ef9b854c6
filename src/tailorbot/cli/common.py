"""What the commands share: options, settings loading, error reporting, the HTTP client."""

from __future__ import annotations

import functools
import signal
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, ParamSpec, TypeVar

import typer
from pydantic import ValidationError
from typer._click.exceptions import UsageError  # click as typer vendors it
from typer.core import TyperGroup

from tailorbot.config import Settings
from tailorbot.errors import BackendError, EngineError

if TYPE_CHECKING:
    from tailorbot.stream.thread import LoopWorker

P = ParamSpec("P")
SIGNAL_CHECK_S = 0.1  # how soon a worker command notices SIGINT/SIGTERM
R = TypeVar("R")

ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="TOML settings file (else TAILORBOT_CONFIG, if set)."),
]
DataDirOption = Annotated[
    Path | None, typer.Option("--data-dir", help="Where the embedded backends keep their files.")
]
UrlOption = Annotated[
    str | None,
    typer.Option(
        "--url", help="Base URL of a tailorbot server (default: http://HOST:PORT of the settings)."
    ),
]
ApiKeyOption = Annotated[
    str | None,
    typer.Option("--api-key", help="X-API-Key to send (default: the configured api_key)."),
]


class CliError(Exception):
    """A failure to report as one line (no traceback) with a non-zero exit."""


class OneLineErrors(TyperGroup):
    """The command group whose usage errors (an unknown option, a bad or missing value) are
    one ``error:`` line naming the option and the reason, exit status 2, like every other
    refusal of the CLI (typer draws them as a box of several lines)."""

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        windows_expand_args: bool = True,
        **extra: Any,
    ) -> Any:
        call = functools.partial(
            super().main, args, prog_name, complete_var, windows_expand_args=windows_expand_args
        )
        if not standalone_mode:
            return call(standalone_mode=False, **extra)
        try:
            result = call(standalone_mode=False, **extra)
        except UsageError as exc:
            if type(exc).__name__ == "NoArgsIsHelpError":  # a bare group: its help
                exc.show()
                sys.exit(exc.exit_code)
            where = f" (see '{exc.ctx.command_path} --help')" if exc.ctx is not None else ""
            typer.secho(f"error: {exc.format_message()}{where}", err=True, fg=typer.colors.RED)
            sys.exit(exc.exit_code)
        except typer.Abort:
            typer.echo("Aborted!", err=True)
            sys.exit(1)
        # Without standalone mode a command's typer.Exit comes back as its code.
        sys.exit(result if isinstance(result, int) else 0)


def fail(message: str, code: int = 1) -> NoReturn:
    typer.secho(f"error: {message}", err=True, fg=typer.colors.RED)
    raise typer.Exit(code)


def _describe_validation(error: ValidationError) -> str:
    parts = []
    for item in error.errors(include_url=False):
        name = ".".join(str(p) for p in item["loc"]) or "settings"
        parts.append(f"{name}: {item['msg']}")
    return "invalid settings: " + "; ".join(parts)


def _first_problem(error: EngineError) -> str:
    """The first problem of an error that lists them (the message alone only counts them)."""
    if not error.problems:
        return ""
    problem = error.problems[0]
    where = f"event {problem.index}: " if problem.index is not None else ""
    more = f" (+{len(error.problems) - 1} more)" if len(error.problems) > 1 else ""
    return f" ({where}{problem.field}: {problem.reason}{more})"


def reports_errors(command: Callable[P, R]) -> Callable[P, R]:
    """Turn the errors a user can cause or fix into one clear line and exit status 1."""

    @functools.wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except typer.Exit:
            raise
        except ValidationError as exc:
            fail(_describe_validation(exc))
        except EngineError as exc:
            fail(exc.message + _first_problem(exc))
        except (CliError, BackendError, FileNotFoundError, ValueError, OSError) as exc:
            fail(str(exc))
        except Exception as exc:
            # The HTTP client's errors (commands that talk to a server) and a saved model
            # that cannot be read back; imported here so that `tailorbot --help` loads neither.
            from tailorbot.client import TailorbotError
            from tailorbot.models.registry import ModelLoadError, ModelNotFoundError

            if isinstance(exc, TailorbotError):
                fail(exc.message)
            if isinstance(exc, ModelNotFoundError):
                fail(str(exc))
            if isinstance(exc, ModelLoadError):
                fail(f"{exc} (corrupt, or saved by incompatible code)")
            raise

    return wrapper


def load_settings(config: Path | None, **overrides: Any) -> Settings:
    """Settings from CLI options > environment > TOML file > defaults (None = not given)."""
    return Settings.load(config, **overrides)


# What a reading command may need, by name: (the settings' URL of it, how an error names it).
STORES: dict[str, tuple[str, str]] = {
    "log": ("resolved_log_url", "event log"),
    "store": ("resolved_store_url", "online store"),
}


def reading_settings(
    config: Path | None, *, needs: Sequence[str] = ("log", "store"), **overrides: Any
) -> Settings:
    """:func:`load_settings` for a command that reads what is there: with an embedded
    backend, a data directory that does not exist (a mistyped ``--data-dir``) is an error,
    not an empty system created on the spot; so is a missing SQLite file of a backend the
    command ``needs`` (``"log"``, ``"store"``; opening it would create it empty). Network
    backends (Redis, Kafka) are not files: not checked."""
    from tailorbot._sqlite import parse_sqlite_url

    settings = load_settings(config, **overrides)
    embedded = settings.log_url is None or settings.store_url is None  # under data_dir
    if embedded and not settings.data_dir.is_dir():
        raise CliError(f"no data directory {str(settings.data_dir)!r} (see --data-dir)")
    for name in needs:
        method, what = STORES[name]
        url = getattr(settings, method)()
        if url.lower().startswith("sqlite:") and not parse_sqlite_url(url)[0].is_file():
            raise CliError(
                f"no {what} at {str(parse_sqlite_url(url)[0])!r}: nothing to read "
                "(see --data-dir, or start the server there first)"
            )
    return settings


def usage_error(message: str) -> NoReturn:
    """A bad or missing value found inside a command: one ``error:`` line, exit status 2,
    like the usage errors the parser finds (:class:`OneLineErrors`)."""
    from typer._click.globals import get_current_context

    raise UsageError(message, ctx=get_current_context(silent=True))


def server_url(settings: Settings, url: str | None) -> str:
    return (url or f"http://{settings.host}:{settings.port}").rstrip("/")


def api_headers(settings: Settings, api_key: str | None) -> dict[str, str]:
    key = api_key or (settings.api_key.get_secret_value() if settings.api_key else None)
    return {"X-API-Key": key} if key else {}


def describe_response(response: Any) -> str:
    """The server's error message (with its problems) or the raw status line."""
    try:
        body = response.json()
        message = body["message"]
    except (ValueError, KeyError, TypeError):
        return f"HTTP {response.status_code}: {response.text[:200]}"
    problems = body.get("problems") or []
    details = "; ".join(
        f"{'event ' + str(p['index']) + ' ' if p.get('index') is not None else ''}"
        f"{p.get('field')}: {p.get('reason')}"
        for p in problems[:5]
    )
    return f"HTTP {response.status_code}: {message}" + (f" ({details})" if details else "")


def run_until_signalled(loop: LoopWorker, name: str) -> None:
    """Run ``loop`` (``run(stop_event)``, ``close()``) in a thread until SIGINT or SIGTERM,
    then stop it (its batch finishes and commits) and close it; an error that ended the loop
    is raised here.

    The signal handler only notes the signal, and this thread sets the stop event: setting
    a ``threading.Event`` *in* the handler can deadlock, since the handler runs in the main
    thread, which may hold that very Event's lock at that instant (inside ``Event.wait``), and
    a worker SIGTERMed then hung for good.
    """
    from tailorbot.stream.thread import WorkerThread

    signalled: list[int] = []
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda number, _frame: signalled.append(number))
    thread = WorkerThread(loop, name)
    thread.start()
    try:
        while not signalled and thread.state() == "running":
            time.sleep(SIGNAL_CHECK_S)
    finally:
        thread.stop()
    if thread.error is not None:
        raise thread.error
