"""Package exports imported on first use (PEP 562), so importing a package stays cheap.

The intent model's package re-exports training and evaluation helpers that pull in
scikit-learn and SciPy (about a second); the server's start-up needs none of them.

>>> __getattr__, __dir__ = lazy_exports("json", {"dumps": "json"})
>>> __getattr__("dumps")([1])
'[1]'
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(
    package: str, names: Mapping[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` for ``package``; ``names`` maps each exported name to
    the module that defines it: ``".base"`` (relative to ``package``) or an absolute name."""

    def __getattr__(name: str) -> Any:
        module = names.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(module, package), name)

    def __dir__() -> list[str]:
        return sorted(names)

    return __getattr__, __dir__
