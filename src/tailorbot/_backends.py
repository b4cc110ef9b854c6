"""Backend classes by URL scheme, imported only when used (so Redis, Kafka and PostgreSQL
stay optional extras). Each family (log, store, archive) keeps its own scheme map.

>>> backend_class("sqlite:///x.db", {"sqlite": "tailorbot.store.sqlite:SqliteOnlineStore"},
...               "online store").__name__
'SqliteOnlineStore'
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

# The pip extra each optional backend module needs (the embedded ones need none).
EXTRAS = {"redis": "redis", "kafka": "kafka", "postgres": "postgres", "postgresql": "postgres"}


def backend_class(url: str, backends: Mapping[str, str], what: str) -> Any:
    """The class ``backends`` maps ``url``'s scheme to (``"module:Class"``)."""
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
