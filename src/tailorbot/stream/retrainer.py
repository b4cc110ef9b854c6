"""The retraining watch loop: every ``check_s`` seconds, retrain if enough new labels arrived
(or the schedule is due), gate, promote or keep (:mod:`tailorbot.models.pipeline.retrain`).

Run by ``tailorbot retrain --watch`` or, with ``retrain_in_worker``, as a thread of
``tailorbot worker``. Each outcome is logged with its reason and shown in the metrics.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from tailorbot.config import Settings
from tailorbot.log.base import EventLog
from tailorbot.metrics import Metrics
from tailorbot.models.pipeline.audit import AuditGate
from tailorbot.models.pipeline.retrain import RetrainOutcome, RetrainPolicy, retrain_once
from tailorbot.models.pipeline.routed import served_model_options
from tailorbot.models.pipeline.source import log_events
from tailorbot.store.base import FeatureStore, ProfileStore

logger = logging.getLogger(__name__)
DEFAULT_CHECK_S = 60.0


class RetrainWorker:
    """Checks, and retrains when due, until stopped."""

    def __init__(
        self,
        log: EventLog,
        profiles: ProfileStore,
        features: FeatureStore,
        settings: Settings,
        metrics: Metrics | None = None,
        check_s: float = DEFAULT_CHECK_S,
        train_options: Mapping[str, Any] | None = None,
        on_outcome: Callable[[RetrainOutcome], None] | None = None,
    ) -> None:
        self.log = log
        self.profiles = profiles
        self.features = features  # its erasures: what the log still holds of an erased user
        self.settings = settings
        self.metrics = metrics if metrics is not None else Metrics()
        self.check_s = check_s
        self.train_options = train_options
        self.on_outcome = on_outcome

    def check(self, force: bool = False) -> RetrainOutcome:
        settings = self.settings
        events = log_events(self.log, features=self.features)
        users = sorted({e["user_id"] for e in events})
        profiles = self.profiles.get_many(users) if users else {}
        outcome = retrain_once(
            settings.data_dir,
            events,
            profiles,
            policy=RetrainPolicy(settings.retrain_min_labels, settings.retrain_interval_s),
            gate=AuditGate(settings.audit_max_gap, settings.audit_min_rows),
            tolerance=settings.promotion_tolerance,
            train_options={**served_model_options(settings), **(self.train_options or {})},
            force=force,
            attributes=settings.audit_attributes,
        )
        if outcome.outcome != "skipped":
            self.metrics.retrain_last.clear()
            self.metrics.retrain_last.labels(outcome.outcome, outcome.version or "").set(1)
            self.metrics.retrain_last_time.set(datetime.fromisoformat(outcome.at).timestamp())
            logger.info("retraining: %s (%s)", outcome.outcome, outcome.why)
        if self.on_outcome is not None:
            self.on_outcome(outcome)
        return outcome

    def run(self, stop_event: threading.Event) -> None:
        while not stop_event.is_set():
            try:
                self.check()
            except Exception:  # noqa: BLE001 - a failed check is retried at the next tick
                logger.exception("retraining check failed; retrying later")
            stop_event.wait(self.check_s)

    def close(self) -> None:
        """Nothing to release: the log and stores belong to the runtime."""
