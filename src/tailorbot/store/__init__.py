"""Online stores: the interfaces and their backends, opened by URL scheme (imported lazily).

>>> import tempfile
>>> stores = open_stores(f"sqlite:///{tempfile.mkdtemp()}/store.db")
>>> stores.counters.increment("bandit", {"arm-a": 1.0}); stores.counters.counters("bandit")
{'arm-a': 1.0}
>>> stores.close()
"""

from __future__ import annotations

from tailorbot._backends import backend_class
from tailorbot.store.base import (
    CounterStore,
    DecisionStore,
    FeatureRecord,
    FeatureStore,
    ProfileStore,
    StoreError,
    Stores,
)

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


__all__ = [
    "BACKENDS",
    "CounterStore",
    "DecisionStore",
    "FeatureRecord",
    "FeatureStore",
    "ProfileStore",
    "StoreError",
    "Stores",
    "open_stores",
]
