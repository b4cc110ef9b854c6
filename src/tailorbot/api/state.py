"""``app.state`` whose values are plain attributes.

Starlette's ``State`` keeps its values in a dict behind ``__getattr__``, so every read first
fails the ordinary lookup: Python builds an ``AttributeError`` (its message formatted),
clears it and only then calls ``__getattr__``, some 2,500 instructions a read. A decision
reads the app's state three times on its way (the settings for the API key, the decision
service, the decision pool). :class:`AppState` is a ``State`` that also writes each value
into the instance's own ``__dict__``, where the ordinary lookup finds it at once; the dict
behind stays the same, so what reads it as Starlette does still works.

>>> state = AppState({"settings": "s"})
>>> state.decider = None
>>> state.settings, state.decider, state["decider"], state._state
('s', None, None, {'settings': 's', 'decider': None})
>>> state["pool"] = 1
>>> del state.decider
>>> state.pool, hasattr(state, "decider"), sorted(vars(state))
(1, False, ['_state', 'pool', 'settings'])
>>> state.missing
Traceback (most recent call last):
AttributeError: 'AppState' object has no attribute 'missing'
"""

from __future__ import annotations

from typing import Any

from starlette.datastructures import State


class AppState(State):
    """A Starlette ``State`` whose values are also instance attributes (see the module)."""

    def __init__(self, state: dict[str, Any] | None = None) -> None:
        super().__init__(state)
        for key, value in self._state.items():
            object.__setattr__(self, key, value)

    def __setattr__(self, key: Any, value: Any) -> None:
        super().__setattr__(key, value)
        object.__setattr__(self, key, value)

    def __delattr__(self, key: Any) -> None:
        super().__delattr__(key)
        object.__delattr__(self, key)

    def __setitem__(self, key: str, value: Any) -> None:
        self.__setattr__(key, value)

    def __delitem__(self, key: str) -> None:
        self.__delattr__(key)
