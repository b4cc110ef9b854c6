"""What every backend family shares: opening by URL scheme, and typed URL options.

Backends are imported only when used (so Redis, Kafka and PostgreSQL stay optional extras);
each family (log, store, archive) keeps its own scheme map. A backend URL's query options
(``?busy_timeout=5``) are typed with :func:`typed_options`, one converter per known name.

>>> backend_class("sqlite:///x.db", {"sqlite": "tailorbot.store.sqlite:open_stores"},
...               "online store").__name__
'open_stores'
>>> typed_options({"busy_timeout": "2.5"}, {}, {"busy_timeout": positive_float}, "sqlite")
{'busy_timeout': 2.5}
>>> positive_float("inf")
Traceback (most recent call last):
...
ValueError: must be a positive number
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable, Mapping
from typing import Any

# The pip extra each optional backend module needs (the embedded ones need none).
EXTRAS = {"redis": "redis", "kafka": "kafka", "postgres": "postgres", "postgresql": "postgres"}


def backend_class(url: str, backends: Mapping[str, str], what: str) -> Any:
    """The class or opener ``backends`` maps ``url``'s scheme to (``"module:name"``)."""
    scheme = url.split("://", 1)[0].lower()
    if scheme not in backends:
        raise ValueError(
            f"unknown {what} URL scheme {scheme!r}; expected one of {sorted(backends)}"
        )
    module, cls = backends[scheme].split(":")
    try:
        return getattr(importlib.import_module(module), cls)
    except ImportError as exc:
        extra = EXTRAS.get(scheme, scheme)
        raise ImportError(
            f"the {scheme} {what} needs an extra: pip install 'tailorbot[{extra}]' ({exc})"
        ) from exc


def positive_float(text: str | float) -> float:
    """A duration or size option: a finite number > 0 (``inf`` and ``nan`` are refused)."""
    value = float(text)
    if not 0 < value < math.inf:
        raise ValueError("must be a positive number")
    return value


def typed_options(
    query_options: Mapping[str, str],
    overrides: Mapping[str, Any],
    known: Mapping[str, Callable[[str], Any]],
    what: str,
) -> dict[str, Any]:
    """``query_options`` (text from a URL) typed by the ``known`` converters, keyword
    ``overrides`` winning. An unknown URL option is a ValueError naming ``what`` (``"sqlite"``,
    ``"Redis"``), an unknown keyword a TypeError, as for any function."""
    unknown = sorted(set(query_options) - set(known))
    if unknown:
        raise ValueError(
            f"unknown {what} URL option(s) {unknown}; expected some of {sorted(known)}"
        )
    unexpected = sorted(set(overrides) - set(known))
    if unexpected:
        raise TypeError(
            f"unexpected {what} option(s) {unexpected}; expected some of {sorted(known)}"
        )
    out: dict[str, Any] = {}
    for name, text in query_options.items():
        try:
            out[name] = known[name](text)
        except ValueError as exc:
            raise ValueError(f"{what} URL option {name}={text!r}: {exc}") from exc
    out.update(overrides)
    return out
