"""The compiled hot loops (``csrc/``, built by setup.py at install), found once.

Each loop has a pure-Python reference it is tested against; where this install has no build
of the extension (no C compiler), :func:`native` answers ``None``, logs that once, and the
callers serve through their Python path: the same numbers, several times the CPU.

>>> native() is None or hasattr(native(), "NgramScorer")
True
"""

from __future__ import annotations

import functools
import logging
from types import ModuleType

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
