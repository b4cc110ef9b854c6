"""Users: served features, profiles, consent and erasure across every backend.

Erasure reaches the log (records removed or masked; the watermark it returns fences what is
still in flight), the feature store (record deleted, watermark kept under a one-way digest),
the profile and decision stores, the dead letters (records set aside keep the user's key and
bytes), the archive when there is one, and the held-out test rows every saved model version
keeps (``heldout.jsonl``; they would feed the next promotion gate). What is queued for
writing (decisions and their message events, archive records) is written first, so none
lands after the delete.

>>> import tempfile
>>> from tailorbot.events.profile import UserProfile
>>> from tailorbot.log import open_log
>>> from tailorbot.store import open_stores
>>> data = tempfile.mkdtemp()
>>> log, stores = open_log(f"sqlite:///{data}/log.db", 4), open_stores(f"sqlite:///{data}/s.db")
>>> users = UserService(log, stores)
>>> users.put_profile("u1", UserProfile(tier="gold"))
>>> stores.profiles.get("u1")["tier"]
'gold'
>>> users.erase_user("u1"); stores.profiles.get("u1") is None
True
>>> log.close(); stores.close()
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tailorbot.archive.base import EventArchive
from tailorbot.dlq.base import DeadLetterStore
from tailorbot.errors import (
    RETRY_AFTER_S,
    InvalidInput,
    NotFound,
    Problem,
    Unavailable,
    backend_errors,
)
from tailorbot.events.profile import (
    UserProfile,
    attributes_problem,
    consents_to_personalization,
)
from tailorbot.features.view import feature_view
from tailorbot.log.base import EventLog
from tailorbot.models import registry
from tailorbot.services.ports import Flushable
from tailorbot.store.base import Stores

QUEUE_FLUSH_S = 5.0  # erasure waits this long for queued records to be written


class UserService:
    """``archive`` and ``dead_letters`` (optional) are erased too; ``queued`` are written
    before any erasure, in order (the decision recorder, then the archive's record writer);
    ``profile_bounds`` (a :func:`~tailorbot.events.profile.profile_validation_context`) bound
    the free attributes of a profile (the published ceilings when omitted); with ``data_dir``,
    the model registry under it loses an erased user's held-out rows."""

    def __init__(
        self,
        log: EventLog,
        stores: Stores,
        archive: EventArchive | None = None,
        queued: Sequence[Flushable] = (),
        profile_bounds: Mapping[str, int] | None = None,
        dead_letters: DeadLetterStore | None = None,
        data_dir: str | Path | None = None,
    ) -> None:
        self.log = log
        self.stores = stores
        self.archive = archive
        self.queued = tuple(queued)
        self.profile_bounds = profile_bounds
        self.dead_letters = dead_letters
        self.data_dir = data_dir
        self._erase_hooks: list[Callable[[str], None]] = []

    def features(self, user_id: str) -> dict[str, Any]:
        """``{user_id, features, freshness}`` of a user; :class:`NotFound` when there is none."""
        with backend_errors():
            # a decision's read: one round trip, the state without its dedupe ids
            profile, record = self.stores.profile_and_record(user_id)
        if record is None:
            raise NotFound(
                f"no features for user {user_id!r}: unknown user, no event processed yet, "
                "or no personalization consent"
            )
        return {
            "user_id": user_id,
            "features": feature_view(record, profile, time.time()),
            "freshness": {
                "partition": record.partition,
                "offset": record.offset,
                "event_time": _iso(record.event_time),
                "updated_at": _iso(record.updated_at),
            },
        }

    def put_profile(self, user_id: str, profile: UserProfile) -> None:
        """Store the user's attributes; withdrawing personalization consent deletes the
        user's feature record and decisions (and the events it was built from stop counting).

        :class:`InvalidInput` (422) when the attributes break ``profile_bounds``.
        """
        problem = attributes_problem(profile.attributes, self.profile_bounds)
        if problem is not None:
            raise InvalidInput(
                f"invalid profile: {problem}", problems=[Problem(None, "attributes", problem)]
            )
        body = profile.model_dump(mode="json")
        stores = self.stores
        if not profile.consent.personalization:
            self._write_queued()
        with backend_errors():
            consented = consents_to_personalization(stores.profiles.get(user_id))
            # Written first, so that the worker already skips the user's new events.
            stores.profiles.put(user_id, body)
            if profile.consent.personalization:
                return
            # (a decision's read of the record: the worker's would read its dedupe ids too)
            if not consented and stores.profile_and_record(user_id)[1] is None:
                return  # withheld already, and nothing built since: nothing to erase
            # A withdrawal erases even without a feature record: the user's decisions (made
            # before the worker built one) and the watermark for events still in flight.
            # The watermark at the log's end: earlier events never count again.
            partition = self.log.partition_for(user_id)
            # No erasure time: a withdrawal is not an erasure (the archive keeps the user's
            # events), and the worker skips the user's later events by consent anyway.
            end = self.log.end_offsets().get(partition, 0)
            stores.features.erase(user_id, partition, end, erased_at=0.0)
            stores.decisions.erase_user(user_id)
        self._run_erase_hooks(user_id)

    def erase_user(self, user_id: str) -> None:
        """Forget a user everywhere: log records, feature record, profile, decisions, dead
        letters, the saved models' held-out rows and, with an archive, the user's archived
        events, decisions and feedback."""
        stores = self.stores
        self._write_queued()
        with backend_errors():
            watermark = self.log.erase_user(user_id)
            stores.features.erase(user_id, self.log.partition_for(user_id), watermark)
            stores.profiles.delete(user_id)
            stores.decisions.erase_user(user_id)
            if self.dead_letters is not None:
                # after the log: a worker can set no further record of the user aside
                self.dead_letters.erase_user(user_id)
            if self.archive is not None:
                self.archive.erase_user(user_id)
        if self.data_dir is not None:
            # a file that cannot be rewritten fails the erasure (retried), never passes it
            registry.erase_heldout_rows(self.data_dir, user_id)
        self._run_erase_hooks(user_id)

    def _write_queued(self) -> None:
        for queue in self.queued:
            if not queue.flush(QUEUE_FLUSH_S):
                raise Unavailable(
                    "queued records could not be written in time; retry the erasure",
                    retry_after=RETRY_AFTER_S,
                )

    def on_erase(self, hook: Callable[[str], None]) -> None:
        """Call ``hook(user_id)`` after a user is erased (to drop in-memory caches)."""
        self._erase_hooks.append(hook)

    def _run_erase_hooks(self, user_id: str) -> None:
        for hook in self._erase_hooks:
            hook(user_id)


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat().replace("+00:00", "Z")
