"""One typed, frozen settings object for the whole engine.

Values come, highest priority first, from keyword arguments, ``TAILORBOT_*`` environment
variables, an optional TOML file (``TAILORBOT_CONFIG`` or ``Settings.load(config_file=...)``),
then the defaults below. Backends are chosen by URL scheme, the way SQLAlchemy does it::

    TAILORBOT_LOG_URL=sqlite:///var/lib/tailorbot/log.db   # embedded default (under data_dir)
    TAILORBOT_LOG_URL=redis://127.0.0.1:6379/0             # Redis Streams
    TAILORBOT_LOG_URL=kafka://broker1:9092,broker2:9092    # Kafka protocol
    TAILORBOT_STORE_URL=redis://127.0.0.1:6379/0

>>> s = Settings.load(data_dir="/tmp/tb")
>>> s.resolved_log_url()
'sqlite:////tmp/tb/log.db'
"""

from __future__ import annotations

import os
import tomllib
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from tailorbot._config_checks import (
    check_recognizer_specs,
    check_redact_patterns,
    env_text,
    rasa_domain_responses,
    rasa_slot_targets,
)

PROFILE_FIELDS = ("name", "tier", "language", "region")  # profile fields integrations may set
BUILTIN_INTENTS = ("human_handoff", "greeting", "goodbye", "thanks", "affirm", "deny")
VARIANT_PATTERN = r"^[A-Za-z0-9_.\-]{1,64}$"  # a response variant's name, in any KB
REDACTABLE_KINDS = ("email", "phone", "card", "iban", "ip", "ssn")
# What the published schema of a profile allows; settings may only lower these bounds.
PROFILE_ATTRIBUTES_CEILING = 32
PROFILE_KEY_CHARS_CEILING = 64
PROFILE_VALUE_CHARS_CEILING = 1024
# Bytes of rows the embedded store keeps in memory per concern (feature records; profiles).
READ_CACHE_BYTES = 64_000_000


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TAILORBOT_", frozen=True, extra="forbid")

    # --- where things live -------------------------------------------------------------
    data_dir: Path = Field(
        Path(".tailorbot"), description="Embedded backends and models live here."
    )
    log_url: str | None = Field(None, description="Event log URL; default sqlite under data_dir.")
    store_url: str | None = Field(
        None, description="Online store URL; default sqlite under data_dir."
    )
    archive_url: str | None = Field(None, description="PostgreSQL archive URL; none by default.")
    partitions: int = Field(8, ge=1, le=1024, description="Event-log partitions (by user id).")
    store_read_cache_bytes: int = Field(
        READ_CACHE_BYTES,
        ge=0,
        description="Bytes of feature records, and as many of profiles, that each process keeps "
        "in memory from the embedded (SQLite) store; least recently used out first; 0: none.",
    )

    # --- API -------------------------------------------------------------------------
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    api_key: SecretStr | None = Field(None, description="When set, required as X-API-Key.")
    public_docs: bool = Field(
        False, description="Serve /docs and /openapi.json without the API key when one is set."
    )
    ready_requires_model: bool = Field(
        True, description="/readyz is not ready while no intent model is trained."
    )
    max_body_bytes: int = Field(5_000_000, ge=1024)
    max_batch_events: int = Field(1000, ge=1)
    max_text_chars: int = Field(5000, ge=1)
    max_metadata_keys: int = Field(32, ge=0)
    max_metadata_value_chars: int = Field(512, ge=1)
    max_future_skew_s: float = Field(300.0, ge=0, description="Reject timestamps further ahead.")
    max_event_age_s: float = Field(30 * 86400.0, gt=0, description="Reject older timestamps.")
    backpressure_max_lag: int = Field(200_000, ge=1, description="Answer 429 past this lag.")
    max_concurrent_requests: int = Field(
        64, ge=1, description="Requests one API process handles at once; more: 503 at once."
    )
    max_inflight_body_bytes: int = Field(
        64_000_000,
        ge=1024,
        description="Request-body bytes one API process holds at once; more: 503 at once.",
    )
    body_read_timeout_s: float = Field(
        30.0, gt=0, description="A request body must arrive within this (408 otherwise)."
    )
    shed_retry_after_s: int = Field(1, ge=1, description="Retry-After of a shed request.")
    blocking_threads: int = Field(
        32,
        ge=1,
        le=1024,
        description="Threads per server process for store, log and archive calls (off the "
        "event loop).",
    )
    decision_threads: int | None = Field(
        None,
        ge=0,
        le=64,
        description="Threads computing decisions (personalize) per server process; more "
        "decisions wait in their queue (CPU-bound Python: more threads only contend for the "
        "interpreter lock). 0: each decision runs on the event loop itself, without a "
        "hand-over to a thread: less CPU and a shorter tail. On a network store the user's "
        "read is then awaited on the loop; on the embedded store it is a local read made "
        "inline, and one that stalls stalls every request of the process, /healthz included. "
        "Unset: 1 on the embedded store, 0 on a network store.",
    )
    max_profile_attributes: int = Field(
        PROFILE_ATTRIBUTES_CEILING,
        ge=0,
        le=PROFILE_ATTRIBUTES_CEILING,
        description="Free attributes per user profile.",
    )
    max_profile_key_chars: int = Field(
        PROFILE_KEY_CHARS_CEILING, ge=1, le=PROFILE_KEY_CHARS_CEILING
    )
    max_profile_value_chars: int = Field(
        PROFILE_VALUE_CHARS_CEILING,
        ge=1,
        le=PROFILE_VALUE_CHARS_CEILING,
        description="Characters of a string attribute value.",
    )

    # --- operations -------------------------------------------------------------------
    log_format: str = Field(
        "json", pattern="^(json|human)$", description="json: one object per line; human."
    )
    log_level: str = Field("info", pattern="(?i)^(debug|info|warning|error|critical)$")
    access_log: bool = Field(True, description="One log line per API request.")
    dashboard_step_s: float = Field(
        2.0,
        gt=0,
        description="The dashboard page polls its data this often (never faster than every "
        "0.2 s), and each server process keeps a snapshot of its metrics at most this often "
        "(a faster poll would only repeat the last one).",
    )

    # --- retention -------------------------------------------------------------------
    log_retention_s: float | None = Field(
        None, gt=0, description="Trim log records older than this (by ingestion time)."
    )
    log_retention_records: int | None = Field(
        None, ge=1, description="Keep at most this many records per log partition."
    )
    decision_retention_s: float | None = Field(
        None, gt=0, description="Delete decision records older than this (feedback after: 404)."
    )
    retention_every_s: float = Field(60.0, gt=0, description="How often retention runs.")

    # --- privacy ---------------------------------------------------------------------
    redact: bool = True
    redact_kinds: tuple[str, ...] = REDACTABLE_KINDS
    redact_recognizers: tuple[str, ...] = Field(
        (),
        description="More kinds of PII: 'package.module:Name' of a "
        "tailorbot.events.recognizers.Recognizer, run after the built-in kinds.",
    )
    redact_patterns: dict[str, str] = Field(
        default_factory=dict,
        description="More kinds of PII as {kind: regular expression}; a match becomes <KIND>.",
    )

    # --- stream processor ------------------------------------------------------------
    consumer_group: str = "tailorbot-features"
    lateness_s: float = Field(600.0, ge=0, description="Out-of-order bound for windows.")
    recent_intents: int = Field(10, ge=1, description="How many last intents to keep.")
    csat_ewma_alpha: float = Field(0.3, gt=0, le=1)
    worker_batch: int = Field(
        8000,
        ge=1,
        description="Most records per worker poll: reached only while the log is behind "
        "(a poll takes what is there); each batch has a fixed cost (store reads, the write, "
        "the commit), so a backlog drains faster in big ones.",
    )
    worker_poll_s: float = Field(
        0.1,
        gt=0,
        description="Longest wait of one poll of an idle log (new records end it at once).",
    )
    worker_linger_s: float = Field(
        0.005, ge=0, description="Wait after a batch that was not full, so the next one fills."
    )
    run_worker_in_server: bool = True
    worker_metrics_url: str | None = Field(
        None,
        description="Metrics endpoint of this server's worker process (set by `tailorbot serve`); "
        "its metrics are included in /metrics and its state in /readyz.",
    )
    metrics_siblings_dir: Path | None = Field(
        None,
        description="Private folder where the processes of `tailorbot serve --workers N` serve "
        "their metrics to each other (set by `tailorbot serve`); /metrics answers their sum.",
    )

    # --- decision plane --------------------------------------------------------------
    kb_dir: Path | None = Field(None, description="Knowledge base; default: the bundled demo KB.")
    bandit: str = Field("linucb", pattern="^(linucb|thompson)$", description="Variant policy.")
    bandit_alpha: float = Field(1.0, ge=0, description="Exploration strength.")
    bandit_epsilon: float = Field(0.05, ge=0, le=1, description="Exploration floor.")
    bandit_sync_s: float = Field(
        1.0, ge=0, description="Reload shared bandit statistics this often."
    )
    context_attributes: tuple[str, ...] = Field(
        (),
        description="Profile attributes the bandit also sees: 'name' (a bool or a number in "
        "[0, 1]) or 'name=value' (1.0 when the attribute equals value).",
    )
    experiment_name: str = Field("default", pattern=r"^[A-Za-z0-9_\-]{1,64}$")
    experiment_holdout: float = Field(
        0.0, ge=0, le=1, description="Share of users (by id hash) served by the control policy."
    )
    control_variant: str | None = Field(
        None,
        pattern=VARIANT_PATTERN,
        description="A fixed variant for the control policy (the knowledge base must have it: "
        "checked when the models load); default (none): a bandit over the same variants that "
        "learns the best one per channel, language and tier group (no personal history).",
    )
    experiment_start: datetime | None = Field(
        None,
        description="When the experiment starts (ISO 8601); before it everyone gets the control "
        "and outcomes are the pre-period (CUPED's covariate). None: no pre-period.",
    )
    seed: int | None = Field(None, description="Seed for exploration (tests, simulations).")
    recommendations: int = Field(3, ge=1, le=20, description="Articles per decision.")
    fast_routes: bool = Field(
        True,
        description="Serve POST /v1/personalize, POST /v1/feedback and POST /v1/events on "
        "lean ASGI paths (api/fast.py, api/fast_ingest.py); off: through FastAPI's routing like "
        "every other route.",
    )
    record_flush_s: float = Field(
        0.05,
        gt=0,
        le=1,
        description="Decisions are written in batches this often (off the request path); a "
        "crash loses at most this much of them. A batch's two write transactions cost more "
        "than its decisions at a few hundred per second: 50 ms cut the recorder's CPU per "
        "decision by ~25 % against 20 ms, and 20 ms by ~40 % against 5 (docs/benchmarks.md).",
    )
    record_max_pending: int = Field(
        10_000, ge=1, description="Decisions waiting to be written before personalize answers 503."
    )
    feedback_linger_s: float = Field(
        0.02,
        ge=0,
        le=1,
        description="How long a feedback waits for others to share its batch (one log append "
        "and one store write for all): a feedback answers up to this much later, and costs "
        "less CPU the larger its batch (0.39-0.45 x alone at 16, docs/benchmarks.md). 0: each "
        "batch takes what is waiting at once.",
    )
    decision_wait_s: float = Field(
        0.25,
        ge=0,
        description="How long feedback waits for a decision another process has not written "
        "yet before answering 404.",
    )
    kb_poll_s: float = Field(
        2.0, ge=0, description="How often a server looks for a new live-KB version (0: never)."
    )

    # --- integrations (docs/integrations.md) ------------------------------------------------
    chatwoot_url: str | None = Field(
        None, pattern=r"^https?://", description="Base URL of the Chatwoot installation."
    )
    chatwoot_token: SecretStr | None = Field(
        None, description="The Chatwoot agent bot's access token (api_access_token)."
    )
    chatwoot_secret: SecretStr | None = Field(
        None, description="Chatwoot webhook secret; unset: webhook signatures are not checked."
    )
    rasa_slot_attributes: tuple[str, ...] = Field(
        (),
        description="Rasa slots copied into profiles: 'slot=field', field one of name, tier, "
        "language, region or attributes.<name>.",
    )
    rasa_handoff_actions: tuple[str, ...] = Field(
        ("*handoff*", "action_*human*"),
        description="Rasa action names (shell patterns) that mean a human takes over.",
    )
    rasa_domain: Path | None = Field(
        None,
        description="The bot's Rasa domain (a file or a directory of them): the NLG endpoint "
        "answers a response no KB template words with the domain's own response.",
    )
    # --- learning loop ---------------------------------------------------------------
    model_poll_s: float = Field(
        2.0, ge=0, description="Check the registry's current intent version this often (0: never)."
    )
    promotion_tolerance: float = Field(
        0.01, ge=0, le=1, description="A candidate may score this much below current and pass."
    )
    audit_max_gap: float = Field(
        0.10,
        ge=0,
        le=1,
        description="Audit gate: no segment's intent accuracy confidently this far below overall.",
    )
    audit_min_rows: int = Field(
        30, ge=1, description="Segments with fewer labelled rows are flagged, not judged."
    )
    audit_attributes: tuple[str, ...] = Field(
        (), description="Profile attributes the audit also segments by."
    )
    retrain_min_labels: int = Field(
        200, ge=1, description="Retrain once this many new labels arrived."
    )
    retrain_interval_s: float = Field(
        0.0, ge=0, description="Also retrain on this schedule, labels or not (0: off)."
    )
    retrain_in_worker: bool = Field(
        False, description="`tailorbot worker` also runs the retraining watch loop."
    )

    # --- intent model (what `tailorbot train` builds) --------------------------------
    intent_model: str = Field(
        "hybrid",
        pattern=r"^(hybrid|hybrid\+minilm|tfidf)$",
        description="hybrid: TF-IDF + WordLlama static embeddings; hybrid+minilm: plus MiniLM "
        "(int8 ONNX, ~2 ms more CPU, the `encoder` extra); tfidf: n-grams only.",
    )
    builtin_intents: tuple[str, ...] = Field(
        BUILTIN_INTENTS,
        description="Built-in conversational intents trained with the bundled data; one "
        "left out is trained as out_of_scope.",
    )
    fallback_target_recall: float | None = Field(
        None,
        ge=0,
        le=1,
        description="Out-of-scope recall the fallback must reach on validation (the best "
        "in-scope accuracy among thresholds, margins and similarity floors that reach it); "
        "default: the cost objective.",
    )
    intent_language: str = Field(
        "en", pattern="^[a-z]{2}$", description="Language of the bundled training data."
    )
    detect_languages: tuple[str, ...] = Field(
        ("en", "de", "fr", "es", "it", "nl", "pt"),
        description="Languages the message-language detector chooses among; empty: off.",
    )

    @model_validator(mode="after")
    def _intent_settings_fit(self) -> Settings:
        unknown = sorted(set(self.builtin_intents) - set(BUILTIN_INTENTS))
        if unknown:
            raise ValueError(f"builtin_intents: unknown {unknown}; known: {list(BUILTIN_INTENTS)}")
        if self.detect_languages and self.intent_language not in self.detect_languages:
            raise ValueError("detect_languages must include intent_language")
        return self

    @field_validator("redact_recognizers")
    @classmethod
    def _recognizers_named(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        check_recognizer_specs(value)
        return value

    @field_validator("redact_patterns")
    @classmethod
    def _patterns_compile(cls, value: dict[str, str]) -> dict[str, str]:
        check_redact_patterns(value, REDACTABLE_KINDS)
        return value

    @model_validator(mode="after")
    def _one_body_fits_in_flight(self) -> Settings:
        if self.max_inflight_body_bytes < self.max_body_bytes:
            raise ValueError(
                f"max_inflight_body_bytes ({self.max_inflight_body_bytes}) must be at least "
                f"max_body_bytes ({self.max_body_bytes}), or no large request is ever admitted"
            )
        return self

    @model_validator(mode="after")
    def _no_blocking_sync_on_the_loop(self) -> Settings:
        if self.bandit_sync_s == 0 and self.decisions_on_loop_over_network():
            raise ValueError(
                "bandit_sync_s=0 (reload before every choice) with decisions on the event loop "
                "over a network store would hold up every request for a round trip: set "
                "bandit_sync_s above 0 or decision_threads to 1 or more"
            )
        return self

    @model_validator(mode="after")
    def _bandit_params_fit(self) -> Settings:
        if self.bandit == "thompson" and self.bandit_alpha <= 0:
            raise ValueError("bandit_alpha (the posterior scale v) must be > 0 with thompson")
        return self

    @model_validator(mode="after")
    def _rasa_slots_are_pairs(self) -> Settings:
        self.rasa_slots()  # raises ValueError naming the bad entry
        return self

    @field_validator("rasa_domain")
    @classmethod
    def _rasa_domain_reads(cls, value: Path | None) -> Path | None:
        if value is not None:
            rasa_domain_responses(value)  # raises ValueError naming the file and the fault
        return value

    def rasa_slots(self) -> dict[str, str]:
        """``rasa_slot_attributes`` as ``{slot: profile field}``."""
        return rasa_slot_targets(self.rasa_slot_attributes, PROFILE_FIELDS)

    def resolved_log_url(self) -> str:
        return self.log_url or f"sqlite:///{self.data_dir / 'log.db'}"

    def resolved_store_url(self) -> str:
        return self.store_url or f"sqlite:///{self.data_dir / 'store.db'}"

    def embedded_store(self) -> bool:
        """Whether the online store is the embedded one (SQLite, read in-process)."""
        return urlsplit(self.resolved_store_url()).scheme == "sqlite"

    def resolved_decision_threads(self) -> int:
        """``decision_threads``, else 1 on the embedded (SQLite) store and 0 on a network
        one (decisions on the event loop, the user's read awaited there).

        An embedded store answers in-process within microseconds, so a second thread mostly
        takes turns at the interpreter lock: one thread used 8-21 % less CPU per decision and
        answered more at saturation (docs/benchmarks.md). On a network store, where each
        decision's read is a round trip, awaiting it on the loop cost 6-9 % less CPU per
        decision than two threads, one computing while the other waits.

        >>> Settings(store_url=None, decision_threads=None).resolved_decision_threads()
        1
        >>> Settings(store_url="redis://127.0.0.1:6379/0").resolved_decision_threads()
        0
        >>> three = Settings(store_url="sqlite:///tmp/store.db", decision_threads=3)
        >>> three.resolved_decision_threads()
        3
        """
        if self.decision_threads is not None:
            return self.decision_threads
        return 1 if self.embedded_store() else 0

    def decisions_on_loop_over_network(self) -> bool:
        """Whether decisions run on the event loop over a network store: then nothing in a
        decision may wait on the store but the user's read, which is awaited."""
        return self.resolved_decision_threads() == 0 and not self.embedded_store()

    def to_env(self) -> dict[str, str]:
        """``TAILORBOT_*`` variables that rebuild these settings in a child process."""
        return {
            f"TAILORBOT_{name.upper()}": env_text(value)
            for name in type(self).model_fields
            if (value := getattr(self, name)) is not None
        }

    @classmethod
    def load(cls, config_file: str | Path | None = None, **overrides: Any) -> Settings:
        """Build settings from kwargs > env > TOML file > defaults. Unset kwargs are ignored."""
        kwargs = {k: v for k, v in overrides.items() if v is not None}
        toml = config_file or os.environ.get("TAILORBOT_CONFIG")
        if toml is None:
            return cls(**kwargs)
        path = Path(toml)
        if not path.is_file():
            raise FileNotFoundError(f"config file not found: {path}")
        # The file sits below the environment: values set there win over the file's.
        try:
            from_file = TomlConfigSettingsSource(cls, path)()
        except tomllib.TOMLDecodeError as exc:  # its message names no file: say which
            raise ValueError(f"config file {path}: invalid TOML: {exc}") from None
        from_env = EnvSettingsSource(cls)()
        return cls(**{**from_file, **from_env, **kwargs})

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings)
