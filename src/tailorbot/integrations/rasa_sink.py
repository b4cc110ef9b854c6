"""Where :class:`~tailorbot.integrations.rasa_consumer.RasaBrokerConsumer` hands the events
it maps: :class:`RasaSink`, and :class:`ServiceSink`, the ingestion door and the profile
updater of a deployment."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, Protocol

from tailorbot.errors import InvalidInput, PayloadTooLarge
from tailorbot.integrations.profiles import ProfileUpdater
from tailorbot.services.ports import EventSink
from tailorbot.telemetry.logs import user_ref

logger = logging.getLogger(__name__)


class RasaSink(Protocol):
    """Where mapped events go: the ingestion service and the profile store."""

    def ingest(self, events: list[dict[str, Any]]) -> int:
        """Append the valid events (the invalid ones are reported, not stored); return how
        many were accepted. Raise :class:`Overloaded` / :class:`Unavailable` to retry."""

    def update_profile(
        self, user_id: str, fields: Mapping[str, Any], dated: Mapping[str, float] | None = None
    ) -> None:
        """Merge ``fields`` (``tier``, ``attributes.<name>``...) into the user's profile, but
        none whose slot event (``dated``: field -> epoch s) was made before its erasure."""


class ServiceSink:
    """The sink of a deployment: the ingestion service and the profile updater.

    Events the schema refuses are dropped (counted, logged) rather than retried: they would
    fail the same way every time, also when the door refuses the whole batch (none valid).
    """

    def __init__(self, events: EventSink, profiles: ProfileUpdater, max_events: int = 1000) -> None:
        if max_events < 1:
            raise ValueError(f"max_events must be positive, got {max_events}")
        self.events = events
        self.profiles = profiles
        self.max_events = max_events
        # events that requests of a batch which then failed took (id -> accepted): its
        # retry does not send them again (at most one batch's worth; emptied once through)
        self._sent: dict[str, bool] = {}

    def ingest(self, events: list[dict[str, Any]]) -> int:
        """Events accepted, sent in requests of at most ``max_events`` (the door's
        ``max_batch_events``): a batch of Rasa records can map to more events than one
        request may carry. When a later request fails (the log down, 429), the batch is
        retried, and the events its earlier requests took are not sent again."""
        sent = self._sent
        pending = [e for e in events if e.get("event_id") not in sent]
        accepted = sum(sent[e["event_id"]] for e in events if e.get("event_id") in sent)
        step = self.max_events
        for start in range(0, len(pending), step):
            chunk = pending[start : start + step]
            took = self._ingest(chunk, start)
            accepted += sum(took)
            for event, ok in zip(chunk, took, strict=True):
                if isinstance(event.get("event_id"), str):
                    sent[event["event_id"]] = ok
        sent.clear()
        return accepted

    def _ingest(self, events: list[dict[str, Any]], first: int) -> list[bool]:
        """One request: whether each event was accepted. ``first``: the index of its first
        event among those this attempt sends."""
        try:
            result = self.events.ingest(events, partial=True)
        except (InvalidInput, PayloadTooLarge) as exc:
            if any(p.index is None for p in exc.problems):
                raise  # the request itself (e.g. empty), not its events: not theirs to pay
            # Partial, yet not one event valid: the door refuses the whole request. Each
            # event would fail the same way on every retry, so they are dropped like single
            # ones.
            reasons = "; ".join(
                f"[{first + (p.index or 0)}] {p.field}: {p.reason}" for p in exc.problems
            )
            logger.warning(
                "rasa consumer: events %d-%d sent, all refused: %s",
                first, first + len(events) - 1, reasons,
            )  # fmt: skip
            return [False] * len(events)
        took = []
        for status in result.results:
            if status.get("errors"):
                logger.warning("rasa consumer: event refused: %s", status["errors"])
            took.append(status.get("status") == "accepted")  # a repeat within it: stored once
        return took

    def update_profile(
        self, user_id: str, fields: Mapping[str, Any], dated: Mapping[str, float] | None = None
    ) -> None:
        try:
            if dated:  # a batch re-read after the user's erasure must not bring them back
                fields = self.profiles.since_erasure(user_id, fields, dated)
            self.profiles.update(user_id, fields)
        except InvalidInput as exc:
            # a digest, never the raw id: logs must not hold user ids
            logger.warning(
                "rasa consumer: profile fields of %s not stored: %s", user_ref(user_id), exc
            )
