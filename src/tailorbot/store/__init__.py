"""Online stores: the interface and its backends, opened by URL scheme (imported lazily)."""

from __future__ import annotations

from tailorbot._backends import backend_class
from tailorbot.store.base import FeatureRecord, OnlineStore, StoreError, user_digest

BACKENDS: dict[str, str] = {
    "sqlite": "tailorbot.store.sqlite:SqliteOnlineStore",
    "redis": "tailorbot.store.redis:RedisOnlineStore",
}


def open_store(url: str) -> OnlineStore:
    """Open the online store at ``url`` (``sqlite://`` or ``redis://``)."""
    backend = backend_class(url, BACKENDS, "online store")
    return backend.from_url(url)


__all__ = ["BACKENDS", "FeatureRecord", "OnlineStore", "StoreError", "open_store", "user_digest"]
