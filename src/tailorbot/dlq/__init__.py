"""Dead letters: the interface and its backends, opened from the store URL's scheme.

>>> import tempfile
>>> open_dead_letters(f"sqlite:///{tempfile.mkdtemp()}/store.db").count()
0
"""

from __future__ import annotations

from tailorbot._backends import backend_class
from tailorbot.dlq.base import DeadLetter, DeadLetterError, DeadLetterStore

BACKENDS: dict[str, str] = {
    "sqlite": "tailorbot.dlq.sqlite:open_dead_letters",
    "redis": "tailorbot.dlq.redis:open_dead_letters",
}


def open_dead_letters(url: str) -> DeadLetterStore:
    """The dead letters kept beside the online store at ``url``."""
    opener = backend_class(url, BACKENDS, "dead-letter store")
    letters: DeadLetterStore = opener(url)
    return letters


__all__ = ["BACKENDS", "DeadLetter", "DeadLetterError", "DeadLetterStore", "open_dead_letters"]
