"""The online-store interface: per-user feature records and shared decision state.

A backend keeps four things:

* **feature records** — the stream processor's per-user state, with its freshness (the log
  partition/offset and time of the last applied event). Writes are atomic per user and
  *fenced*: a record older (by offset) than the stored one is ignored, so a stale worker
  cannot overwrite a newer state after a rebalance.
* **profiles** — user attributes set with ``PUT /v1/users/{id}`` (tier, language, consent...).
* **decisions** — what ``/v1/personalize`` answered, kept for ``/v1/feedback``.
* **counters** — additive float statistics shared by every server worker (bandit sufficient
  statistics, article co-occurrence); addition commutes, so concurrent workers never lose
  an update.

Erasure removes the user's record, profile and decisions, and keeps only a one-way hash of
the user id with a log watermark, so that in-flight events of the erased user are dropped.
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any


class StoreError(Exception):
    """The store is unreachable or refused an operation (maps to HTTP 503)."""


def user_digest(user_id: str) -> str:
    """One-way id for erasure tombstones: the user id itself is never kept after erasure."""
    return hashlib.sha256(b"tailorbot-erasure:" + user_id.encode()).hexdigest()


@dataclass(slots=True)
class FeatureRecord:
    user_id: str
    state: dict[str, Any]
    partition: int
    offset: int  # log offset of the last applied event
    event_time: float  # epoch seconds of the newest applied event
    updated_at: float  # wall-clock epoch seconds of this write
    version: int = field(default=1)  # bumps when the state layout changes


class OnlineStore(ABC):
    # --- feature records -------------------------------------------------------------
    @abstractmethod
    def get(self, user_id: str) -> FeatureRecord | None: ...

    @abstractmethod
    def get_many(self, user_ids: Iterable[str]) -> dict[str, FeatureRecord]: ...

    @abstractmethod
    def put_many(self, records: Sequence[FeatureRecord]) -> None:
        """Write records, each atomically; skip one whose offset is not newer than stored."""

    # --- profiles --------------------------------------------------------------------
    @abstractmethod
    def get_profile(self, user_id: str) -> dict[str, Any] | None: ...

    @abstractmethod
    def get_profiles(self, user_ids: Iterable[str]) -> dict[str, dict[str, Any]]: ...

    @abstractmethod
    def put_profile(self, user_id: str, profile: Mapping[str, Any]) -> None: ...

    # --- decisions -------------------------------------------------------------------
    @abstractmethod
    def put_decision(self, decision_id: str, user_id: str, record: Mapping[str, Any]) -> None: ...

    @abstractmethod
    def get_decision(self, decision_id: str) -> dict[str, Any] | None: ...

    @abstractmethod
    def record_feedback(self, decision_id: str, feedback: Mapping[str, Any]) -> bool:
        """Attach feedback to a decision; True the first time, False when already given."""

    # --- shared counters -------------------------------------------------------------
    @abstractmethod
    def increment(self, namespace: str, deltas: Mapping[str, float]) -> None:
        """Atomically add ``deltas`` to the named counters of ``namespace``."""

    @abstractmethod
    def counters(self, namespace: str) -> dict[str, float]: ...

    # --- privacy ---------------------------------------------------------------------
    @abstractmethod
    def erase_user(self, user_id: str, partition: int, watermark: int) -> None:
        """Delete everything about the user; remember ``watermark`` under its digest."""

    @abstractmethod
    def erasure_watermarks(self, user_ids: Iterable[str]) -> dict[str, int]:
        """For erased users among ``user_ids``: log offset below which to drop their events."""

    # --- lifecycle -------------------------------------------------------------------
    @abstractmethod
    def ping(self) -> None:
        """Raise :class:`StoreError` unless the store is reachable."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections and files."""
