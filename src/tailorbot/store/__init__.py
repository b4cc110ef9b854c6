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


def open_stores(url: str) -> Stores:
    """Open the online stores at ``url`` (``sqlite://`` or ``redis://``)."""
    opener = backend_class(url, BACKENDS, "online store")
    stores: Stores = opener(url)
    return stores


__all__ = ["BACKENDS", "FeatureRecord", "StoreError", "Stores", "open_stores"]
