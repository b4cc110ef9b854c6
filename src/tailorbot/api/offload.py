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

Decisions (``/v1/personalize``) are CPU-bound Python on the hottest route: threads beyond a
couple only take turns at the interpreter lock, and each hand-over costs CPU. So they have a
:class:`DecisionPool` of their own, ``settings.decision_threads`` threads
(:meth:`Settings.resolved_decision_threads`: by default one on the embedded store, none on
a network store), and the rest wait in its queue, where waiting costs nothing and the
admission bound (api/shedding.py) still sheds what cannot be served in time. A hand-over
is one put on a C queue, and the answers of decisions that finish close together wake the
event loop once; anyio's ``to_thread`` inside two limiters cost the event loop about a
fifth of its own interpreter time per decision (py-spy, docs/benchmarks.md).

With ``decision_threads = 0`` a decision runs on the event loop itself (:func:`run_personalize`).
Even one hand-over per decision costs: the decision thread waits for the busy loop to release
the interpreter lock, and both threads' data move between cores. Inline, a server process
spent 11-16 % less CPU per request on the embedded store and its tail shrank several times,
6-9 % less on Redis (docs/benchmarks.md). On a network store the user's read, the decision's
one round trip, is awaited first (:meth:`DecisionService.read_user_ahead`), so the loop
serves other requests meanwhile. On the embedded store the decision reads SQLite inline: the
default keeps one thread there, because a local read that hangs (a stalled disk) would hold
up every request of the process, ``/healthz`` included.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import logging
import queue
import threading
from collections import deque
from collections.abc import Callable
from typing import Any, NamedTuple, TypeVar

import anyio.to_thread
from fastapi import Request

from tailorbot.services.decisions import DecisionNotWritten, DecisionService
from tailorbot.services.decisions.schemas import FeedbackRequest, PersonalizeRequest

T = TypeVar("T")
logger = logging.getLogger(__name__)


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


async def run_personalize(state: Any, decider: DecisionService, request: PersonalizeRequest) -> Any:
    """``request``'s decision as JSON-ready data: on the app's :class:`DecisionPool`, or on
    the event loop itself (``decision_threads = 0``), after the user's read was awaited where
    the store is a network one (:meth:`DecisionService.read_user_ahead`)."""
    pool: DecisionPool = state.decisions
    if pool.threads:
        return await pool.run(decider.personalize_payload, request)
    user = await decider.read_user_ahead(request)
    return decider.personalize_payload(request, user=user)


async def run_feedback(state: Any, decider: DecisionService, request: FeedbackRequest) -> Any:
    """``request`` applied in the decision service's next feedback batch (one thread applies
    them all: no hand-over per feedback); one whose decision another process may still be
    writing is applied alone, on the blocking pool, where it may wait for it."""
    try:
        return await asyncio.wrap_future(decider.submit_feedback(request))
    except DecisionNotWritten:
        return await run_blocking(state, decider.feedback, request)


class PoolStatistics(NamedTuple):
    waiting: int  # handed over, not started
    running: int  # being computed


class DecisionPool:
    """``threads`` daemon threads computing what the event loop hands them, in order.

    :meth:`run` is awaited on the loop that :meth:`start` was given; the call runs in the
    caller's context (its context variables: request id, trace). A caller cancelled while
    its call runs does not stop it (a thread cannot be interrupted); its answer is dropped.
    With ``threads=0`` there are no threads: :meth:`run` calls at once, on the loop.

    >>> async def main() -> int:
    ...     pool = DecisionPool(2)
    ...     pool.start(asyncio.get_running_loop())
    ...     try:
    ...         return sum(await asyncio.gather(*(pool.run(pow, n, 2) for n in range(4))))
    ...     finally:
    ...         pool.close()
    >>> asyncio.run(main())
    14
    """

    def __init__(self, threads: int, name: str = "tailorbot-decision") -> None:
        if threads < 0:
            raise ValueError(f"threads must be >= 0, got {threads}")
        self.threads = threads
        self.name = name
        self._calls: queue.SimpleQueue[_Call | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._finished: deque[tuple[asyncio.Future[Any], Any, BaseException | None]] = deque()
        self._wake_pending = False
        self._running = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._workers: list[threading.Thread] = []

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._workers:
            return
        self._loop = loop
        for i in range(self.threads):
            worker = threading.Thread(target=self._work, name=f"{self.name}-{i}", daemon=True)
            worker.start()
            self._workers.append(worker)

    async def run(self, func: Callable[..., T], *args: Any) -> T:
        if self._loop is None:
            raise RuntimeError("the decision pool is not started")
        if not self.threads:
            return func(*args)
        future: asyncio.Future[T] = self._loop.create_future()
        self._calls.put(_Call(future, contextvars.copy_context(), func, args))
        return await future

    def statistics(self) -> PoolStatistics:
        with self._lock:
            return PoolStatistics(self._calls.qsize(), self._running)

    def close(self, timeout_s: float = 10.0) -> None:
        """Let the calls handed over finish (within ``timeout_s``), then stop the threads."""
        for _ in self._workers:
            self._calls.put(None)
        for worker in self._workers:
            worker.join(timeout_s)
        self._workers.clear()

    def _work(self) -> None:
        while (call := self._calls.get()) is not None:
            with self._lock:
                self._running += 1
            result: Any = None
            error: BaseException | None = None
            try:
                result = call.context.run(call.func, *call.args)
            except BaseException as exc:  # noqa: BLE001 - raised again in the awaiting task
                error = exc
            with self._lock:
                self._running -= 1
                self._finished.append((call.future, result, error))
                wake, self._wake_pending = not self._wake_pending, True
            if wake:
                self._wake()

    def _wake(self) -> None:
        loop = self._loop
        try:
            if loop is not None:
                loop.call_soon_threadsafe(self._settle)
        except RuntimeError:  # the loop closed (shutdown): nobody waits for these answers
            logger.debug("event loop closed; %d decision answers dropped", len(self._finished))

    def _settle(self) -> None:
        with self._lock:
            finished, self._finished = self._finished, deque()
            self._wake_pending = False
        for future, result, error in finished:
            if future.cancelled():
                continue
            if error is None:
                future.set_result(result)
            else:
                future.set_exception(error)


class _Call(NamedTuple):
    future: asyncio.Future[Any]
    context: contextvars.Context
    func: Callable[..., Any]
    args: tuple[Any, ...]
