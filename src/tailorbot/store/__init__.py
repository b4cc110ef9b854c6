"""Online stores: the interface and its backends, opened by URL scheme (imported lazily)."""

from __future__ import annotations

import importlib

from tailorbot.store.base import FeatureRecord, OnlineStore, StoreError, user_digest

BACKENDS: dict[str, str] = {
    "sqlite": "tailorbot.store.sqlite:SqliteOnlineStore",
    "redis": "tailorbot.store.redis:RedisOnlineStore",
}


def open_store(url: str) -> OnlineStore:
    """Open the online store at ``url`` (``sqlite://`` or ``redis://``)."""
    scheme = url.split("://", 1)[0].lower()
    if scheme not in BACKENDS:
        raise ValueError(f"unknown store URL scheme {scheme!r}; expected one of {sorted(BACKENDS)}")
    module, cls = BACKENDS[scheme].split(":")
    try:
        backend = getattr(importlib.import_module(module), cls)
    except ImportError as exc:
        raise ImportError(
            f"the {scheme} store needs an extra: pip install 'tailorbot[{scheme}]' ({exc})"
        ) from exc
    return backend.from_url(url)


__all__ = ["BACKENDS", "FeatureRecord", "OnlineStore", "StoreError", "open_store", "user_digest"]
