"""Event logs: the interface and its backends, opened by URL scheme.

Backends are imported lazily so that Redis and Kafka stay optional extras.

>>> import tempfile
>>> log = open_log(f"sqlite:///{tempfile.mkdtemp()}/log.db", partitions=4)
>>> log.append([("u1", b"{}")])
[(2, 0)]
"""

from __future__ import annotations

from tailorbot._backends import backend_class
from tailorbot.log.base import Consumer, EventLog, LogError, LogRecord, partition_for

# URL scheme -> "module:class". One module per backend, imported only when used.
BACKENDS: dict[str, str] = {
    "sqlite": "tailorbot.log.sqlite:SqliteEventLog",
    "redis": "tailorbot.log.redis_streams:RedisStreamsEventLog",
    "kafka": "tailorbot.log.kafka:KafkaEventLog",
}


def open_log(url: str, partitions: int) -> EventLog:
    """Open the event log at ``url`` (``sqlite://``, ``redis://`` or ``kafka://``)."""
    backend = backend_class(url, BACKENDS, "event log")
    return backend.from_url(url, partitions=partitions)


__all__ = ["BACKENDS", "Consumer", "EventLog", "LogError", "LogRecord", "open_log", "partition_for"]
