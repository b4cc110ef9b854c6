"""``tailorbot replay`` (send a JSONL file of events) and ``tailorbot features`` (show one user)."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

import orjson
import typer

from tailorbot.cli.common import (
    ApiKeyOption,
    CliError,
    ConfigOption,
    UrlOption,
    api_headers,
    describe_response,
    fail,
    load_settings,
    reports_errors,
    server_url,
)

MAX_RETRIES = 30  # on 429/503, each after the server's Retry-After
SHOWN_BAD_LINES = 20
JSON_HEADERS = {"Content-Type": "application/json"}  # what the server's /v1/ routes read


def _read_events(path: Path, bad: list[tuple[int, str]]) -> Iterator[tuple[int, Any, int]]:
    """``(line number, event, bytes read)`` for each parseable line; the rest go to ``bad``."""
    with path.open("rb") as file:
        for number, line in enumerate(file, start=1):
            if not line.strip():
                yield number, None, len(line)
                continue
            try:
                event = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                bad.append((number, f"invalid JSON: {exc}"))
                event = None
            else:
                if not isinstance(event, dict):
                    bad.append((number, f"expected a JSON object, got {type(event).__name__}"))
                    event = None
            yield number, event, len(line)


def _post(client: Any, url: str, events: list[Any]) -> dict[str, Any]:
    """POST a batch with per-event status; wait out 429/503 as the server asks."""
    import httpx

    body = orjson.dumps({"events": events})
    for _ in range(MAX_RETRIES):
        try:
            response = client.post(
                url, content=body, params={"partial": "true"}, headers=JSON_HEADERS
            )
        except httpx.HTTPError as exc:
            raise CliError(f"cannot reach {url}: {exc}") from exc
        if response.status_code in (429, 503):
            time.sleep(float(response.headers.get("Retry-After", "1")))
            continue
        if response.status_code in (413, 422):
            refused = _all_rejected(response, len(events))
            if refused is not None:
                return refused
        if response.status_code != 200:
            raise CliError(describe_response(response) + _hint(response))
        result: dict[str, Any] = response.json()
        return result
    raise CliError(f"the server stayed busy after {MAX_RETRIES} retries")


def _all_rejected(response: Any, count: int) -> dict[str, Any] | None:
    """A partial batch in which the server rejected every event (it answers 422, or 413
    when a text is too long, naming each event's problems) as per-event results, like a
    batch with some events accepted: bad lines, not a failed request. None for any other
    refusal (a body over the server's limit, an empty batch, no per-event problems)."""
    try:
        problems = response.json()["problems"]
        by_index: dict[int, list[dict[str, Any]]] = {}
        for problem in problems:
            index = problem["index"]
            if type(index) is not int or not 0 <= index < count:
                return None
            by_index.setdefault(index, []).append(
                {"field": problem.get("field"), "reason": problem.get("reason")}
            )
    except (ValueError, KeyError, TypeError):
        return None
    if len(by_index) != count:  # not every event named: not the per-event refusal
        return None
    results = [
        {"index": index, "status": "rejected", "errors": by_index[index]} for index in range(count)
    ]
    return {"accepted": 0, "rejected": count, "results": results}


def _hint(response: Any) -> str:
    """A smaller batch helps a body over the server's limit, not one event that is too
    large (a 413 that names its field)."""
    if response.status_code != 413:
        return ""
    try:
        problems = response.json().get("problems")
    except ValueError:
        problems = None
    return "" if problems else " (try a smaller --batch)"


@reports_errors
def replay(
    file: Annotated[
        Path, typer.Argument(exists=True, dir_okay=False, readable=True, help="JSONL events.")
    ],
    url: UrlOption = None,
    batch: Annotated[int, typer.Option(min=1, help="Events per request.")] = 100,
    api_key: ApiKeyOption = None,
    config: ConfigOption = None,
) -> None:
    """Send a JSONL file of events to a server.

    Lines that are not valid JSON or that the server rejects are listed by line number,
    and the exit status is then 1.
    """
    import httpx

    settings = load_settings(config)
    endpoint = server_url(settings, url) + "/v1/events"
    bad: list[tuple[int, str]] = []
    accepted = 0
    pending: list[tuple[int, Any]] = []

    def flush(client: httpx.Client) -> None:
        nonlocal accepted
        try:
            result = _post(client, endpoint, [event for _, event in pending])
        except CliError as exc:
            # the earlier batches are stored: say how far it got, so a rerun can skip them
            raise CliError(
                f"{exc}; {accepted} events accepted before it ({len(bad)} bad lines); "
                f"resume from line {pending[0][0]}"
            ) from None
        accepted += result["accepted"]
        for status, (number, _) in zip(result["results"], pending, strict=True):
            if status["status"] == "rejected":
                reasons = "; ".join(f"{e['field']}: {e['reason']}" for e in status["errors"])
                bad.append((number, reasons))
        pending.clear()

    with (
        httpx.Client(headers=api_headers(settings, api_key), timeout=30.0) as client,
        typer.progressbar(
            length=file.stat().st_size, label="replaying", file=sys.stderr
        ) as progress,
    ):
        for number, event, size in _read_events(file, bad):
            progress.update(size)
            if event is None:
                continue
            pending.append((number, event))
            if len(pending) >= batch:
                flush(client)
        if pending:
            flush(client)
    typer.echo(f"{accepted} events accepted, {len(bad)} bad lines")
    if bad:
        for number, reason in sorted(bad)[:SHOWN_BAD_LINES]:
            typer.echo(f"line {number}: {reason}", err=True)
        if len(bad) > SHOWN_BAD_LINES:
            typer.echo(f"... and {len(bad) - SHOWN_BAD_LINES} more", err=True)
        raise typer.Exit(1)


@reports_errors
def features(
    user_id: Annotated[str, typer.Argument(help="The user's id.")],
    url: UrlOption = None,
    api_key: ApiKeyOption = None,
    config: ConfigOption = None,
) -> None:
    """Print a user's real-time features (JSON) as a server serves them."""
    import httpx

    settings = load_settings(config)
    endpoint = f"{server_url(settings, url)}/v1/users/{quote(user_id, safe='')}"
    try:
        response = httpx.get(endpoint + "/features", headers=api_headers(settings, api_key))
    except httpx.HTTPError as exc:
        fail(f"cannot reach {endpoint}: {exc}")
    if response.status_code != 200:
        fail(describe_response(response))
    typer.echo(orjson.dumps(response.json(), option=orjson.OPT_INDENT_2).decode())


def register(app: typer.Typer) -> None:
    app.command()(replay)
    app.command()(features)
