"""The composition root: settings → backends → services, built once.

``tailorbot serve`` (each server process), ``tailorbot worker``, the CLI commands and the
tests all build what they need here, so the wiring exists in one place:

* backends from the settings' URLs: the event log, the online stores and, with
  ``archive_url``, the archive and the background writer of decision and feedback records;
* services over them: :attr:`Runtime.ingestion`, :attr:`Runtime.users`,
  :attr:`Runtime.health` and, once an intent model exists, the decision service
  (:meth:`Runtime.load_decisions`);
* the workers: a stream worker and, with an archive, an archive worker, as threads of this
  process (:meth:`Runtime.start_workers`) or run by ``tailorbot worker``.

>>> import tempfile
>>> from tailorbot.config import Settings
>>> from tailorbot.events.codec import now_iso
>>> runtime = Runtime(Settings.load(data_dir=tempfile.mkdtemp(), run_worker_in_server=False))
>>> runtime.ingestion.ingest([{"type": "session_started", "user_id": "u1",
...     "session_id": "s1", "timestamp": now_iso()}]).accepted
1
>>> runtime.health.readiness()["ready"]
True
>>> runtime.stop()
"""

from __future__ import annotations

import functools
import logging
import random
import threading
from urllib.parse import urlsplit

from tailorbot.archive import EventArchive, open_archive
from tailorbot.archive.writer import ArchiveWriter
from tailorbot.config import Settings
from tailorbot.dlq import DeadLetterStore, open_dead_letters
from tailorbot.errors import RETRY_AFTER_S, Unavailable, backend_errors
from tailorbot.events.profile import profile_validation_context
from tailorbot.events.redact import Redactor
from tailorbot.integrations.chatwoot_client import ChatwootClient
from tailorbot.integrations.rasa import RasaEventMapper
from tailorbot.integrations.rasa_domain import RasaResponses
from tailorbot.kb.loader import default_kb_dir
from tailorbot.kb.repository import KBRepository
from tailorbot.log import EventLog, open_log
from tailorbot.metrics import Metrics
from tailorbot.models.drift import DriftMonitor
from tailorbot.services.articles import KnowledgeArticles
from tailorbot.services.decisions import (
    DecisionService,
    experiment_for,
    load_decision_models,
)
from tailorbot.services.decisions.live_kb import KBReloader, kb_version_number
from tailorbot.services.decisions.loader import kb_control_problems
from tailorbot.services.decisions.recorder import BATCH as RECORD_BATCH
from tailorbot.services.decisions.recorder import DecisionRecorder
from tailorbot.services.decisions.tracing import trace_decisions
from tailorbot.services.health import HealthService
from tailorbot.services.ingestion import IngestionService
from tailorbot.services.users import UserService
from tailorbot.store import Stores, open_stores
from tailorbot.stream.archiver import ArchiveWorker, archive_group
from tailorbot.stream.retention import Retention
from tailorbot.stream.thread import WorkerThread
from tailorbot.stream.worker import StreamWorker
from tailorbot.telemetry.tracing import Tracing

logger = logging.getLogger(__name__)


class Runtime:
    """Everything one process (or one CLI command) runs, opened from ``settings``.

    An unreachable backend raises at construction (what was opened is closed again).
    """

    def __init__(
        self, settings: Settings, metrics: Metrics | None = None, tracing: Tracing | None = None
    ) -> None:
        self.settings = settings
        self.metrics = metrics if metrics is not None else Metrics()
        self.tracing = tracing
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        self.log: EventLog = open_log(settings.resolved_log_url(), settings.partitions)
        self.archive: EventArchive | None = None
        self.archive_writer: ArchiveWriter | None = None
        try:
            self.stores: Stores = open_stores(
                settings.resolved_store_url(), settings.store_read_cache_bytes
            )
            self.dead_letters: DeadLetterStore = open_dead_letters(settings.resolved_store_url())
            if settings.archive_url is not None:
                with backend_errors():
                    self.archive = open_archive(settings.archive_url)
                self.archive_writer = ArchiveWriter(self.archive)
                self.archive_writer.start()  # from here: the recorder's thread runs niced
        except BaseException:
            self._close_backends()
            raise
        self.kb_reloaders: list[KBReloader] = []
        self._services: list[DecisionService] = []  # closed by stop()
        self._lifecycle = threading.Lock()
        self._stopping = False
        self._build_services(settings)
        self.chatwoot = _chatwoot_client(settings)
        self.rasa_responses = _rasa_responses(settings)  # read once, not per NLG request
        self._closed = False
        if tracing is not None:
            self._trace_backends(tracing)

    def _build_services(self, settings: Settings) -> None:
        """The services over the opened backends (the decision service comes later)."""
        self.drift: DriftMonitor | None = None  # once the decision service is loaded
        # With `serve --workers N`: the drift of the whole server, fed by the API with the
        # processes' summed counts (api/server_metrics.py)
        self.server_drift: DriftMonitor | None = None
        self.threads: dict[str, WorkerThread] = {}  # "worker", "archiver" when running here
        self.ingestion = IngestionService(
            self.log,
            Redactor.from_settings(settings),
            settings,
            self.metrics,
        )
        self.recorder = DecisionRecorder(
            self.ingestion,
            self.stores.decisions,
            self.archive_writer,
            flush_s=settings.record_flush_s,
            max_pending=settings.record_max_pending,
            batch=min(RECORD_BATCH, settings.max_batch_events),
            # Kafka: the thread that hits a fatal producer error builds the next producer,
            # whose threads would inherit the writer's lower priority (_priority.py)
            yield_core=urlsplit(settings.resolved_log_url()).scheme != "kafka",
        )
        self.recorder.start()
        queued = [self.recorder] + ([self.archive_writer] if self.archive_writer else [])
        self.users = UserService(
            self.log,
            self.stores,
            self.archive,
            queued,
            profile_bounds=profile_validation_context(settings),
            dead_letters=self.dead_letters,
            data_dir=settings.data_dir,
        )
        self.health = HealthService(
            self.log,
            self.stores,
            settings.consumer_group,
            archive=self.archive,
            archive_group=archive_group(settings),
            threads=self.threads,
            worker_url=settings.worker_metrics_url,
        )
        # The live KB (versioned under the data dir, seeded from kb_dir): every process polls
        # it; a change that would drop the fixed control variant is refused (422).
        self.kb = KBRepository(
            settings.data_dir / "kb",
            settings.kb_dir or default_kb_dir(),
            check=functools.partial(kb_control_problems, settings),
        )
        # the door refuses article ids the live KB does not have (shared-counter keys)
        self.article_ids = KnowledgeArticles(self.kb, max(settings.kb_poll_s, 1.0))
        self.ingestion.article_ids = self.article_ids

    def _trace_backends(self, tracing: Tracing) -> None:
        """Spans around the log append and the feature write; events carry the trace."""
        tracing.wrap(self.log, "append", "log append", only_in_trace=True)
        tracing.wrap(self.stores.features, "put_many", "feature write", only_in_trace=True)
        self.ingestion.stamp_trace = tracing.stamp_events

    # --- decisions ------------------------------------------------------------------------

    def load_decisions(self) -> DecisionService:
        """A started decision service over this runtime's models and stores.

        Raises :class:`~tailorbot.services.decisions.ModelMissing` (503) while the data
        directory has no intent model.
        """
        models = load_decision_models(self.settings, self.stores.counters, self.kb)
        service = DecisionService(
            models,
            events=self.ingestion,
            recorder=self.recorder,
            stores=self.stores,
            settings=self.settings,
            experiment=experiment_for(self.settings),
            metrics=self.metrics,
            archive=self.archive_writer,
        )
        service.start()
        if self.tracing is not None:
            trace_decisions(service, self.tracing)
        # Always there: reload_kb serves this process's own changes at once; it polls for the
        # other processes' changes only with kb_poll_s > 0.
        loaded = kb_version_number(str(models.versions["kb"]))
        reloader = KBReloader(self.kb, service, loaded, self.settings.kb_poll_s)
        if self.settings.kb_poll_s > 0:
            reloader.start()
        if self.drift is None:
            # the reference of the model in force: a hot swap brings its own
            self.drift = DriftMonitor(
                lambda: service.models.metadata.get("reference"), self.metrics
            )
            self.metrics.before_render(self.drift.refresh)
            self.server_drift = DriftMonitor(
                lambda: service.models.metadata.get("reference"),
                self.metrics,
                from_first_read=True,  # the sums hold decisions from before this process
            )
        with self._lifecycle:
            if not self._stopping:
                self._services.append(service)
                self.kb_reloaders.append(reloader)
                return service
        # Loaded while the runtime was stopping (a server shut down during start-up): its
        # threads must not outlive the backends.
        reloader.stop()
        service.close()
        raise Unavailable("tailorbot is shutting down", retry_after=RETRY_AFTER_S)

    def reload_kb(self) -> None:
        """Serve the live KB's newest version now (after a change through the API): the door's
        article ids and every decision service, whatever ``kb_poll_s``."""
        self.article_ids.refresh()
        for reloader in self.kb_reloaders:
            reloader.check()

    # --- integrations ---------------------------------------------------------------------

    def rasa_mapper(self) -> RasaEventMapper:
        return RasaEventMapper(self.settings.rasa_slots(), self.settings.rasa_handoff_actions)

    # --- workers --------------------------------------------------------------------------

    def stream_worker(self, member_id: str | None = None, pause_gc: bool = False) -> StreamWorker:
        """A stream worker; ``pause_gc`` only for a worker that is a process of its own (GC
        is process-wide: a worker thread must not turn it off under the API)."""
        worker = StreamWorker(
            self.log,
            self.stores,
            self.settings,
            self.metrics,
            member_id,
            pause_gc=pause_gc,
            dead_letters=self.dead_letters,
            retention=self.retention(),
        )
        if self.tracing is not None:
            worker.trace_batch = self.tracing.batch_span
        return worker

    def retention(self) -> Retention | None:
        """Retention of the log (for the stream and archive groups) and of the decisions,
        when the settings ask for any."""
        settings = self.settings
        wanted = (
            settings.log_retention_s,
            settings.log_retention_records,
            settings.decision_retention_s,
        )
        if all(value is None for value in wanted):
            return None
        groups = [settings.consumer_group]
        if self.archive is not None:
            groups.append(archive_group(settings))
        return Retention(self.log, self.stores.decisions, settings, groups)

    def archive_worker(self, member_id: str | None = None) -> ArchiveWorker | None:
        """An archive worker, or None without an archive."""
        if self.archive is None:
            return None
        return ArchiveWorker(
            self.log,
            self.archive,
            self.stores.features,
            self.settings,
            self.metrics,
            member_id,
            dead_letters=self.dead_letters,
        )

    def start_workers(self) -> None:
        """When ``settings.run_worker_in_server``: run a stream worker and, with an archive,
        an archive worker as background threads of this process. Idempotent."""
        if not self.settings.run_worker_in_server or self.threads:
            return
        self.threads["worker"] = WorkerThread(self.stream_worker(), "tailorbot-stream-worker")
        archiver = self.archive_worker()
        if archiver is not None:
            self.threads["archiver"] = WorkerThread(archiver, "tailorbot-archive-worker")
        for thread in self.threads.values():
            thread.start()

    # --- lifecycle ------------------------------------------------------------------------

    def stop(self) -> None:
        """Stop the worker threads, write the queued archive records and close the
        backends. Idempotent."""
        with self._lifecycle:
            self._stopping = True
            services, self._services = self._services, []
            reloaders, self.kb_reloaders = self.kb_reloaders, []
        for reloader in reloaders:
            reloader.stop()
        for service in services:  # idempotent: the app closes its decider too
            service.close()
        if self.chatwoot is not None:
            self.chatwoot.close()  # sends what is queued first (bounded wait)
        threads = list(self.threads.values())
        self.threads.clear()
        for thread in threads:
            thread.stop()
        if not self._closed:
            self._closed = True
            self.recorder.close()
            self._close_backends()

    def _close_backends(self) -> None:
        closers = [
            getattr(self.archive_writer, "close", None),
            getattr(self.archive, "close", None),
            self.log.close,
            getattr(getattr(self, "stores", None), "close", None),
            getattr(getattr(self, "dead_letters", None), "close", None),
        ]
        for close in closers:
            if close is None:
                continue
            try:
                close()
            except Exception:  # noqa: BLE001 - close the rest; the first error is logged
                logger.exception("closing a backend failed")


def _chatwoot_client(settings: Settings) -> ChatwootClient | None:
    """The outbound Chatwoot client when its URL and token are set."""
    if settings.chatwoot_url is None or settings.chatwoot_token is None:
        return None
    if settings.chatwoot_secret is None:
        logger.warning(
            "the Chatwoot webhook has no secret (TAILORBOT_CHATWOOT_SECRET): %s",
            "it takes the API key in the bot's outgoing_url (?api_key=)"
            if settings.api_key is not None
            else "with no API key either, anyone who can reach it can post to it",
        )
    return ChatwootClient(settings.chatwoot_url, settings.chatwoot_token.get_secret_value())


def _rasa_responses(settings: Settings) -> RasaResponses | None:
    """The Rasa domain's responses for the NLG endpoint; None without ``rasa_domain``."""
    if settings.rasa_domain is None:
        return None
    rng = random.Random(settings.seed) if settings.seed is not None else None
    return RasaResponses.from_path(settings.rasa_domain, rng)
