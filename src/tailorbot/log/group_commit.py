"""Group commit: the appends that arrive while one write transaction runs share the next.

A server process appends from many threads at once. Alone, each append is one SQLite write
transaction behind the process's writer lock, and its thread must take the interpreter lock
back after every statement, which, with CPU-bound threads around (validation, the event
loop), can take up to the switch interval (5 ms) each time: a transaction then held the
writer lock for tens of milliseconds, appends queued behind it, and at 2,000 events/s on a
busy machine the API stalled for seconds. Here the first caller commits its items alone;
the callers that arrive meanwhile queue, and the first of them commits all of them in one
transaction when it is its turn (then hands over to the next queued caller, so none commits
for others for long): one transaction per wave of callers, however many.

Each caller's items stay all or nothing, since one transaction holds them; when a shared
transaction fails, every caller in it gets the error, and none of their items was written.

>>> commits = []
>>> group = GroupCommit(lambda jobs: commits.append(list(jobs)) or [len(j) for j in jobs])
>>> group.submit("abc"), commits
(3, [['abc']])
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

from tailorbot.errors import own_copy

J = TypeVar("J")
R = TypeVar("R")


class _Waiter(Generic[J, R]):
    __slots__ = ("job", "ready", "leads", "result", "error")

    def __init__(self, job: J) -> None:
        self.job = job
        self.ready = threading.Event()
        self.leads = False  # set when it is this caller's turn to commit the queue
        self.result: R | None = None
        self.error: BaseException | None = None


class GroupCommit(Generic[J, R]):
    """Runs ``commit(jobs)`` (one transaction; one result per job, in order) for the jobs
    of concurrent :meth:`submit` calls, one call at a time."""

    def __init__(self, commit: Callable[[Sequence[J]], Sequence[R]]) -> None:
        self.commit = commit
        self._lock = threading.Lock()
        self._queue: list[_Waiter[J, R]] = []
        self._leading = False  # a caller is committing (others queue)

    def submit(self, job: J) -> R:
        """Commit ``job``, alone or with the others queued meanwhile; its result, or the
        error of the transaction that held it."""
        waiter: _Waiter[J, R] = _Waiter(job)
        with self._lock:
            self._queue.append(waiter)
            waiter.leads = not self._leading
            self._leading = True
        if not waiter.leads:
            waiter.ready.wait()  # committed by another caller, or our turn to lead
        if waiter.leads:
            self._lead()
        if waiter.error is not None:
            raise waiter.error
        return waiter.result  # type: ignore[return-value]

    def _lead(self) -> None:
        """Commit everything queued (this caller's job included), then hand over."""
        with self._lock:
            batch, self._queue = self._queue, []
        try:
            results = self.commit([w.job for w in batch])
            for w, result in zip(batch, results, strict=True):
                w.result = result
        except BaseException as exc:  # every caller of the transaction gets its error
            for w in batch:
                w.error = exc if w.leads else own_copy(exc)
        finally:
            with self._lock:
                if self._queue:
                    self._queue[0].leads = True
                    self._queue[0].ready.set()
                else:
                    self._leading = False
            for w in batch:
                if not w.leads:
                    w.ready.set()
