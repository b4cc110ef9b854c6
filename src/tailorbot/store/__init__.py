"""Online stores: the bundle of one backend's stores, opened by URL scheme (imported lazily);
the interfaces are in :mod:`tailorbot.store.base`.

>>> import tempfile
>>> stores = open_stores(f"sqlite:///{tempfile.mkdtemp()}/store.db")
>>> stores.counters.increment("bandit", {"arm-a": 1.0}); stores.counters.counters("bandit")
{'arm-a': 1.0}
>>> stores.close()
"""

from __future__ import annotations

from tailorbot._backends import backend_class
from tailorbot.store.base import FeatureRecord, StoreError, Stores

# URL scheme -> "module:function" returning the backend's Stores; imported only when used.
BACKENDS: dict[str, str] = {
    "sqlite": "tailorbot.store.sqlite:open_stores",
    "redis": "tailorbot.store.redis:open_stores",
}


# Backends that keep an in-process read cache (``read_cache_bytes`` bounds it); Redis has none.
READ_CACHED = frozenset({"sqlite"})


def open_stores(url: str, read_cache_bytes: int | None = None) -> Stores:
    """Open the online stores at ``url`` (``sqlite://`` or ``redis://``); ``read_cache_bytes``
    bounds the read cache of a backend that keeps one (None: the backend's default)."""
    opener = backend_class(url, BACKENDS, "online store")
    scheme = url.split("://", 1)[0].lower()
    if read_cache_bytes is None or scheme not in READ_CACHED:
        stores: Stores = opener(url)
    else:
        stores = opener(url, read_cache_bytes=read_cache_bytes)
    return stores


__all__ = ["BACKENDS", "FeatureRecord", "StoreError", "Stores", "open_stores"]
