"""The demo: train, replay simulated customers against a running server, report.

Everything runs for real: the intent model is trained on the bundled Banking77 data, the API
server runs as a `tailorbot serve` process with its stream worker (``tailorbot demo`` starts
it), and the simulated customers talk to it over HTTP through
:class:`tailorbot.client.Client`. Half of the customers (by a hash of their id) are served by
the non-personalized control policy, so the report's A/B comparison is measured, not assumed.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tailorbot.client import Client
from tailorbot.config import Settings
from tailorbot.kb.loader import default_kb_dir, load_kb
from tailorbot.models import registry
from tailorbot.models.intent import default_dataset
from tailorbot.sim.customers import CustomerPopulation
from tailorbot.sim.messages import MessageSource
from tailorbot.sim.outcomes import OutcomeModel
from tailorbot.sim.runner import Simulation, SimulationResult


@dataclass
class DemoReport:
    training: dict[str, Any]
    simulation: SimulationResult
    experiment: dict[str, Any]
    events_processed: int
    url: str


# Share of conversations an agent reviews and labels (intent_label events): the training
# data `tailorbot dataset build` finds in the demo's log.
LABEL_SHARE = 0.5


def demo_settings(base: Settings, holdout: float, seed: int) -> Settings:
    """The demo's settings: the caller's, plus an A/B holdout. The bandit sees only the
    generic decision context (the caller's ``context_attributes``, none by default): nothing
    is picked to match the simulator's hidden rules."""
    return base.model_copy(
        update={
            "experiment_holdout": holdout,
            "seed": seed if base.seed is None else base.seed,
            "bandit_sync_s": min(base.bandit_sync_s, 0.5),
        }
    )


def ensure_model(settings: Settings, say: Callable[[str], None]) -> dict[str, Any]:
    """Train on the bundled data unless the data directory already has a model: through the
    learning pipeline (70/15/15, 5-fold CV of the defaults, one test), promoted by the gate
    (the first version has no current one to beat; the audit still runs)."""
    from tailorbot.models.pipeline import promotion
    from tailorbot.models.pipeline.audit import AuditGate
    from tailorbot.models.pipeline.routed import served_model_options, train_routed

    try:
        saved = registry.load_current(settings.data_dir, kind="intent")
        say(f"using intent model {saved.version} from {settings.data_dir}")
        return dict(saved.metadata)
    except registry.ModelNotFoundError:
        pass
    dataset = default_dataset("train", builtin_intents=settings.builtin_intents)
    rows = [{"text": t, "intent": i} for t, i in zip(dataset.texts, dataset.labels, strict=True)]
    say(
        f"training the intent model on {len(rows):,} bundled rows (Banking77, built-in intents, "
        "out-of-scope) through the pipeline: 70/15/15 split, 5-fold CV, one test…"
    )
    options = served_model_options(settings)
    language = options["default_language"]
    run = train_routed(
        {language: rows},
        search=False,
        seed=settings.seed or 0,
        sources={language: dataset.source},
        **options,
    )
    candidate = promotion.save_candidate(settings.data_dir, run)
    gate = AuditGate(settings.audit_max_gap, settings.audit_min_rows)
    try:
        promotion.promote(settings.data_dir, candidate.version, gate,
                          tolerance=settings.promotion_tolerance)  # fmt: skip
    except promotion.PromotionRefused as exc:
        raise RuntimeError(f"the demo's first intent model was refused: {exc}") from None
    return dict(registry.load_current(settings.data_dir, kind="intent").metadata)


def build_simulation(
    client: Client, settings: Settings, *, customers: int, seed: int, null_world: bool = False
) -> Simulation:
    """Simulated customers for the server behind ``client``: messages from the bundled
    Banking77 and out-of-scope test rows, reactions judged against the settings' KB.
    ``null_world``: every customer has the same preferences (docs/simulator.md)."""
    kb = load_kb(settings.kb_dir or default_kb_dir())
    test = default_dataset("test", builtin_intents=settings.builtin_intents)  # as trained
    messages = MessageSource(zip(test.texts, test.labels, strict=True))
    in_scope = [i for i in messages.intents if i != "out_of_scope"]
    population = CustomerPopulation(
        size=customers, seed=seed, intents=in_scope, null_world=null_world
    )
    outcomes = OutcomeModel(article_intents=lambda a: _intents_of(kb, a))
    return Simulation(client, population, messages, outcomes, seed=seed, label_share=LABEL_SHARE)


def run_demo(
    client: Client,
    settings: Settings,
    *,
    customers: int,
    contacts: int,
    seed: int,
    training: dict[str, Any],
    on_contact: Callable[[int], None] | None = None,
    null_world: bool = False,
) -> DemoReport:
    """Replay ``contacts`` conversations against the server behind ``client``; ``training``
    is the model metadata of :func:`ensure_model`."""
    sim = build_simulation(client, settings, customers=customers, seed=seed, null_world=null_world)
    result = sim.run(contacts, on_contact)
    experiment = client.experiment().model_dump()
    processed = _events_processed(client)
    return DemoReport(training, result, experiment, processed, client.base_url)


def _intents_of(kb: Any, article_id: str) -> list[str] | None:
    article = kb.article(article_id)
    return list(article.intents) if article is not None else None


def api_key_of(settings: Settings) -> str | None:
    return settings.api_key.get_secret_value() if settings.api_key else None


def _events_processed(client: Client, settle_s: float = 10.0) -> int:
    """Events applied by the stream worker, once it has caught up (bounded wait)."""
    deadline = time.monotonic() + settle_s
    while time.monotonic() < deadline and client.ready().checks.get("lag", 0):
        time.sleep(0.05)
    total = 0.0
    for line in client.metrics().splitlines():
        if line.startswith("tailorbot_events_applied_total "):
            total += float(line.split()[-1])
    return int(total)
