"""Backend work off the event loop, through one bounded pool per server process.

Every handler that reaches a store, the log or the archive runs that work with
:func:`off_loop`: in a worker thread, at most ``settings.blocking_threads`` at once (an
:class:`anyio.CapacityLimiter` made in the app's lifespan). The event loop itself only
parses requests and writes answers, so ``/healthz`` answers while a backend stalls, and a
stalled backend holds at most that many threads (the requests beyond wait for a token, and
are shed by the admission bound long before they pile up).

This is the one place that hands work to threads: the integration webhooks (Rasa, Chatwoot),
the live KB, the dashboard's data and the app's start and stop use it too, never Starlette's
own pool (``run_in_threadpool``), whose 40 threads no setting bounds. Handlers declared with a
plain ``def`` still run in that pool; only those that touch no backend and no file keep that
form (``/metrics``, the schema, the dashboard's static assets).

Decisions (``/v1/personalize``) are CPU-bound Python: threads beyond a couple only take turns
at the interpreter lock, and each hand-over costs CPU. So :func:`run_decision` lets at most
``settings.decision_threads`` of them into the pool at once (two: one can read a store while
the other computes) and queues the rest on the event loop, where waiting costs nothing and
the admission bound (api/shedding.py) still sheds what cannot be served in time.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import anyio.to_thread
from fastapi import Request

T = TypeVar("T")


def make_limiter(threads: int) -> anyio.CapacityLimiter:
    """The pool's bound; call inside the running event loop (the app's lifespan)."""
    return anyio.CapacityLimiter(threads)


async def off_loop(request: Request, func: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """``func(*args, **kwargs)`` in a worker thread of the app's bounded pool."""
    return await run_blocking(request.app.state, func, *args, **kwargs)


async def run_blocking(state: Any, func: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """As :func:`off_loop`, for plain ASGI code that has the app's ``state``."""
    limiter: anyio.CapacityLimiter = state.blocking
    return await anyio.to_thread.run_sync(functools.partial(func, *args, **kwargs), limiter=limiter)


async def run_decision(state: Any, func: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """As :func:`run_blocking`, with at most ``decision_threads`` decisions at once."""
    async with state.decisions:
        return await run_blocking(state, func, *args, **kwargs)
