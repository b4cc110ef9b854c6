"""Worker commands stop on SIGINT/SIGTERM without ever hanging: the signal handler only
notes the signal (``run_until_signalled``); the stop event is set outside the handler."""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from tailorbot.cli.common import run_until_signalled


class Loop:
    """Runs until stopped; ``action`` runs first, in the loop's thread."""

    def __init__(self, action: Any = None) -> None:
        self.action = action
        self.closed = False
        self.handler_returned: bool | None = None

    def run(self, stop_event: threading.Event) -> None:
        if self.action is not None:
            self.action(self, stop_event)
        stop_event.wait(60)

    def close(self) -> None:
        self.closed = True


@pytest.fixture(autouse=True)
def _handlers() -> Iterator[None]:
    saved = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    yield
    for signum, handler in saved.items():
        signal.signal(signum, handler)


def test_sigterm_stops_and_closes_the_loop() -> None:
    loop = Loop(lambda _loop, _stop: os.kill(os.getpid(), signal.SIGTERM))
    run_until_signalled(loop, "test-loop")
    assert loop.closed


def test_the_handler_returns_while_the_stop_event_lock_is_held() -> None:
    """The old handler called ``stop.set()``: run in a thread that holds the event's lock
    (as the main thread does inside ``Event.wait``), it waited forever. Called the same way,
    the handler must return."""

    def probe(loop: Loop, stop_event: threading.Event) -> None:
        handler = signal.getsignal(signal.SIGTERM)
        assert callable(handler)
        done = threading.Event()

        def call() -> None:
            with stop_event._cond:  # type: ignore[attr-defined]
                handler(signal.SIGTERM, None)
            done.set()

        caller = threading.Thread(target=call, daemon=True)
        caller.start()
        loop.handler_returned = done.wait(30)

    loop = Loop(probe)
    run_until_signalled(loop, "test-loop")  # the handler noted the probe's SIGTERM
    assert loop.handler_returned is True
    assert loop.closed


def test_an_error_that_ended_the_loop_is_raised() -> None:
    def fail(_loop: Loop, _stop: threading.Event) -> None:
        raise RuntimeError("backend gone")

    with pytest.raises(RuntimeError, match="backend gone"):
        run_until_signalled(Loop(fail), "test-loop")
