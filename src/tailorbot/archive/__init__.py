"""Archives: the interface and its backends, opened by URL scheme (imported lazily).

>>> open_archive("mysql://db/x")
Traceback (most recent call last):
...
ValueError: unknown archive URL scheme 'mysql'; expected one of ['postgres', 'postgresql']
"""

from __future__ import annotations

from tailorbot._backends import backend_class
from tailorbot.archive.base import ArchiveError, EventArchive

# URL scheme -> "module:class". One module per backend, imported only when used.
BACKENDS: dict[str, str] = {
    "postgresql": "tailorbot.archive.postgres:PostgresArchive",
    "postgres": "tailorbot.archive.postgres:PostgresArchive",
}


def open_archive(url: str) -> EventArchive:
    """Open the archive at ``url`` (``postgresql://user@host:port/db[?schema=name]``)."""
    backend = backend_class(url, BACKENDS, "archive")
    return backend.from_url(url)  # type: ignore[no-any-return]


__all__ = ["BACKENDS", "ArchiveError", "EventArchive", "open_archive"]
