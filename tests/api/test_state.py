"""``app.state`` as :class:`AppState`: Starlette's ``State`` whose values the ordinary
attribute lookup finds (no ``AttributeError`` raised and cleared at each read)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from types import FrameType

import pytest
from fastapi.testclient import TestClient
from starlette.datastructures import State

from tailorbot.api.app import create_app
from tailorbot.api.state import AppState
from tailorbot.config import Settings

# (operation, key, value): what a mix of attribute and item writes, deletes and reads does
STEPS = [
    ("set", "a", 1), ("item", "b", 2), ("set", "a", 3), ("item", "a", 4),
    ("del", "b", None), ("delitem", "a", None), ("set", "c", [5]),
]  # fmt: skip


def _apply(state: State, step: tuple[str, str, object]) -> None:
    operation, key, value = step
    if operation == "set":
        setattr(state, key, value)
    elif operation == "item":
        state[key] = value
    elif operation == "del":
        delattr(state, key)
    else:
        del state[key]


def _seen(state: State) -> dict[str, object]:
    """What each key reads as, by attribute and by item (missing: the exception's type)."""
    out: dict[str, object] = {}
    for key in ("a", "b", "c"):
        try:
            out[f".{key}"] = getattr(state, key)
        except AttributeError:
            out[f".{key}"] = AttributeError
        try:
            out[f"[{key}]"] = state[key]
        except KeyError:
            out[f"[{key}]"] = KeyError
    return out


def test_it_reads_as_starlettes_state_after_every_step() -> None:
    ours, theirs = AppState({"c": 0}), State({"c": 0})
    assert _seen(ours) == _seen(theirs)
    for step in STEPS:
        _apply(ours, step)
        _apply(theirs, step)
        assert _seen(ours) == _seen(theirs), step
        assert ours._state == theirs._state
        # every value is an instance attribute: the ordinary lookup finds it
        assert {k: v for k, v in vars(ours).items() if k != "_state"} == ours._state


def test_deleting_a_missing_key_fails_as_starlettes() -> None:
    for state in (AppState(), State()):
        with pytest.raises(KeyError):
            del state.missing


def _python_calls(read: Callable[[], object]) -> list[str]:
    """The Python functions ``read`` calls (a global trace function sees each call)."""
    called: list[str] = []

    def trace(frame: FrameType, event: str, arg: object) -> None:
        called.append(frame.f_code.co_qualname)

    previous = sys.gettrace()  # a debugger's or a coverage tool's, put back after
    sys.settrace(trace)  # type: ignore[arg-type]
    try:
        read()
    finally:
        sys.settrace(previous)
    return called


def test_the_hot_paths_reads_call_no_python(tmp_path: Path) -> None:
    """What a decision reads of the app's state after its start (the settings, the decision
    pool, the decision service) is found by the ordinary lookup: no ``__getattr__`` is
    called, which Starlette's ``State`` calls after an ``AttributeError`` at each read."""
    app = create_app(Settings.load(data_dir=tmp_path))
    assert isinstance(app.state, AppState)
    with TestClient(app):
        state = app.state
        assert _python_calls(lambda: (state.settings, state.decisions, state.decider)) == [
            "test_the_hot_paths_reads_call_no_python.<locals>.<lambda>"
        ]
        starlettes = State(dict(state._state))
        assert "State.__getattr__" in _python_calls(lambda: starlettes.decisions)
