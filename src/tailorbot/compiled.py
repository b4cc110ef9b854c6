"""The compiled hot loops (``csrc/``, built by setup.py at install), found once.

Each loop has a pure-Python reference it is tested against; where this install has no build
of the extension (no C compiler), :func:`native` answers ``None``, logs that once, and the
callers serve through their Python path: the same numbers, several times the CPU.

>>> native() is None or hasattr(native(), "NgramScorer")
True
"""

from __future__ import annotations

import dataclasses
import functools
import logging
from collections.abc import Callable
from types import ModuleType
from typing import TypeVar

T = TypeVar("T")

log = logging.getLogger(__name__)


@functools.cache
def native() -> ModuleType | None:
    """``tailorbot._native``, or ``None`` where it was not built."""
    try:
        from tailorbot import _native
    except ImportError as exc:
        log.warning(
            "tailorbot's compiled serving loops are not built (%s); serving through the "
            "slower Python path. Reinstall with a C compiler present to build them.",
            exc,
        )
        return None
    return _native


def slotted_builder(cls: type[T]) -> Callable[..., T]:
    """What builds ``cls``, a slotted dataclass, from all its fields' values in order: the
    compiled ``build_slotted`` (the slots set directly, where the dataclass's ``__init__``
    sets them one attribute at a time), else ``cls`` itself. :class:`TypeError` for a class
    it cannot build so: one with a ``__post_init__`` or (not frozen) a ``__setattr__`` of its
    own, a field left out of ``__init__``, or slots that are not its fields in order.

    >>> @dataclasses.dataclass(frozen=True, slots=True)
    ... class Pair:
    ...     left: int
    ...     right: int = 0
    >>> slotted_builder(Pair)(1, 2)
    Pair(left=1, right=2)
    """
    params = getattr(cls, "__dataclass_params__", None)
    fields = dataclasses.fields(cls) if params is not None else ()  # type: ignore[arg-type]
    names = tuple(field.name for field in fields)
    if (
        params is None
        or (not params.frozen and cls.__setattr__ is not object.__setattr__)
        or hasattr(cls, "__post_init__")
        or not all(field.init for field in fields)
        or getattr(cls, "__slots__", None) != names
        or cls.__bases__ != (object,)
    ):
        raise TypeError(f"{cls.__name__} is not a dataclass of slots alone that __init__ fills")
    compiled = native()
    if compiled is None or not hasattr(compiled, "build_slotted"):
        return cls
    layout = compiled.slot_layout(cls, names)
    return functools.partial(compiled.build_slotted, layout)
