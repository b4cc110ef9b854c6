"""Event logs: the interface and its backends, opened by URL scheme.

Backends are imported lazily so that Redis and Kafka stay optional extras.

>>> import tempfile
>>> log = open_log(f"sqlite:///{tempfile.mkdtemp()}/log.db", partitions=4)
>>> log.append([("u1", b"{}")])
[(2, 0)]
"""

from __future__ import annotations

import importlib

from tailorbot.log.base import Consumer, EventLog, LogError, LogRecord, partition_for

# URL scheme -> "module:class". One module per backend, imported only when used.
BACKENDS: dict[str, str] = {
    "sqlite": "tailorbot.log.sqlite:SqliteEventLog",
    "redis": "tailorbot.log.redis_streams:RedisStreamsEventLog",
    "kafka": "tailorbot.log.kafka:KafkaEventLog",
}


def open_log(url: str, partitions: int) -> EventLog:
    """Open the event log at ``url`` (``sqlite://``, ``redis://`` or ``kafka://``)."""
    scheme = url.split("://", 1)[0].lower()
    if scheme not in BACKENDS:
        raise ValueError(
            f"unknown event-log URL scheme {scheme!r}; expected one of {sorted(BACKENDS)}"
        )
    module, cls = BACKENDS[scheme].split(":")
    try:
        backend = getattr(importlib.import_module(module), cls)
    except ImportError as exc:
        raise ImportError(
            f"the {scheme} event log needs an extra: pip install 'tailorbot[{scheme}]' ({exc})"
        ) from exc
    return backend.from_url(url, partitions=partitions)


__all__ = ["BACKENDS", "Consumer", "EventLog", "LogError", "LogRecord", "open_log", "partition_for"]
