"""Dead letters: log records a consumer group cannot handle however often it retries.

A record whose data a backend refuses for good (PostgreSQL's jsonb refuses a U+0000 in a
text) or that cannot be decoded would otherwise stop its partition: the batch is retried
forever and nothing behind it moves. The workers instead put such a record here, with the
reason, and commit past it; ``tailorbot dlq list|replay|drop`` shows them, appends them to
the log again (normalized) or deletes them.

>>> letter = DeadLetter("tailorbot-features-archive", 3, 41, "u1", b"{}", "refused: ...", 0.0)
>>> letter.letter_id
'tailorbot-features-archive:3:41'
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from tailorbot.errors import BackendError


class DeadLetterError(BackendError):
    """The dead-letter store is unreachable (maps to HTTP 503)."""

    what = "dead-letter store"


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """One refused log record: where it was (``group`` consuming ``partition`` at
    ``offset``), its key and bytes as logged, why it was refused, and when (epoch s)."""

    group: str
    partition: int
    offset: int
    key: str
    value: bytes
    reason: str
    failed_at: float

    @property
    def letter_id(self) -> str:
        """``group:partition:offset``: one letter per record and group."""
        return f"{self.group}:{self.partition}:{self.offset}"


class DeadLetterStore(ABC):
    """Where dead letters are kept until replayed or dropped."""

    @abstractmethod
    def put(self, letters: Sequence[DeadLetter]) -> None:
        """Keep ``letters`` (one already kept is replaced: a retried batch is idempotent)."""

    @abstractmethod
    def list(self, limit: int = 100) -> list[DeadLetter]:
        """The oldest ``limit`` letters, oldest first."""

    @abstractmethod
    def drop(self, letter_ids: Iterable[str]) -> int:
        """Delete these letters; how many there were."""

    @abstractmethod
    def erase_user(self, user_id: str) -> int:
        """Delete every letter of the user (those keyed ``user_id``: log records are keyed by
        user, and their bytes hold the user's events), so that erasure reaches them and a
        replay cannot bring them back; how many there were."""

    @abstractmethod
    def count(self) -> int:
        """How many letters are kept."""

    def ping(self) -> None:  # noqa: B027 - a backend with a connection checks it
        """Raise :class:`DeadLetterError` when the store cannot be reached."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""
