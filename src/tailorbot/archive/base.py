"""The archive interface: every accepted event, decision and feedback, kept for training.

The online path (log -> stream processor -> store) keeps only what personalization needs
now; the archive keeps the history that offline work reads: intent training data
(:meth:`EventArchive.iter_messages`), bandit evaluation (:meth:`EventArchive.iter_decisions`)
and a user's data for an access request (:meth:`EventArchive.events_for_user`).

Writes are idempotent (a row already archived under the same id is left as is), so an
archiver may replay a log range after a crash. :meth:`EventArchive.erase_user` deletes
every row of the user.

Records are plain dicts:

* an event is its decoded log form (:func:`tailorbot.events.codec.decode_event`): needs
  ``event_id``, ``user_id``, ``session_id``, ``type``, ``timestamp`` (ISO-8601);
* a decision needs ``decision_id`` and ``user_id`` (``session_id``, ``intent``, ``variant``
  and ``created_at`` are read when present);
* feedback needs ``decision_id`` and ``user_id`` (``reward`` and ``created_at`` when present).

The whole dict is kept and given back as written.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any

from tailorbot.errors import BackendError


class ArchiveError(BackendError):
    """The archive is unreachable or refused an operation (maps to HTTP 503)."""

    what = "archive"


class RecordRefused(ArchiveError):
    """The archive refuses these records for good (their data, not its state): retrying
    cannot help, the records go to the dead letters."""


class EventArchive(ABC):
    # --- writing ---------------------------------------------------------------------
    @abstractmethod
    def write_events(self, events: Sequence[Mapping[str, Any]]) -> int:
        """Archive decoded events in one batch; return how many were new."""

    @abstractmethod
    def write_decision(self, record: Mapping[str, Any]) -> bool:
        """Archive one decision; True when it was new."""

    @abstractmethod
    def write_feedback(self, record: Mapping[str, Any]) -> bool:
        """Archive the feedback on a decision: one row per decision; a record with keys the
        row lacks (a rating after a click) adds them, the row's own values stay. True when
        the row was written or grew."""

    # --- reading ---------------------------------------------------------------------
    @abstractmethod
    def iter_events(
        self,
        since: datetime | None = None,
        until: datetime | None = None,
        types: Iterable[str] | None = None,
        batch: int = 1000,
    ) -> Iterator[dict[str, Any]]:
        """Events with ``since <= timestamp < until`` (either bound optional), oldest first."""

    def iter_messages(
        self, since: datetime | None = None, until: datetime | None = None, batch: int = 1000
    ) -> Iterator[dict[str, Any]]:
        """Message events, oldest first (the intent model's training data)."""
        return self.iter_events(since, until, types=("message",), batch=batch)

    @abstractmethod
    def iter_decisions(
        self, since: datetime | None = None, batch: int = 1000
    ) -> Iterator[dict[str, Any]]:
        """Decisions, oldest first, each with its feedback under ``"feedback"`` (or None)."""

    @abstractmethod
    def events_for_user(self, user_id: str) -> list[dict[str, Any]]:
        """Every archived event of one user, oldest first."""

    # --- privacy ---------------------------------------------------------------------
    @abstractmethod
    def erase_user(self, user_id: str) -> int:
        """Delete the user's events, decisions and feedback; return the rows deleted."""

    # --- lifecycle -------------------------------------------------------------------
    @abstractmethod
    def ping(self) -> None:
        """Raise :class:`ArchiveError` unless the archive is reachable."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""
