"""Load what decisions are made with, from the settings: the newest intent model of the data
directory, the knowledge base, the recommenders (personalized and the intent-only control),
the shared variant policy and the experiment.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from tailorbot.config import Settings
from tailorbot.errors import Unavailable
from tailorbot.features.context import AttributeContext
from tailorbot.kb.loader import default_kb_dir, load_kb
from tailorbot.kb.repository import KBRepository
from tailorbot.models.registry import ModelNotFoundError, latest
from tailorbot.services.decisions.experiment import Experiment
from tailorbot.services.decisions.live_kb import kb_version_label
from tailorbot.services.decisions.policy import VariantPolicy, make_bandit
from tailorbot.services.decisions.recommenders import SharedRecommenders
from tailorbot.services.decisions.responses import ResponseComposer
from tailorbot.services.decisions.service import DecisionModels
from tailorbot.store.base import CounterStore


class ModelMissing(Unavailable):
    code = "no_model"


def load_decision_models(
    settings: Settings, counters: CounterStore, kb_source: KBRepository | None = None
) -> DecisionModels:
    """Raises :class:`ModelMissing` (503) when the data directory has no intent model.

    With ``kb_source`` the KB is the live one (its version in force), else ``kb_dir``'s.
    """
    try:
        saved = latest(settings.data_dir, kind="intent")
    except ModelNotFoundError as exc:
        raise ModelMissing(
            f"no intent model in {settings.data_dir}: train one with "
            f"`tailorbot train --data-dir {settings.data_dir}` (bundled Banking77 by default)"
        ) from exc
    kb_dir = settings.kb_dir or default_kb_dir()
    if kb_source is not None:
        version, kb = kb_source.load()
        kb_version = kb_version_label(version)
    else:
        kb, kb_version = load_kb(kb_dir), kb_digest(kb_dir)
    attributes = AttributeContext(settings.context_attributes)
    policy = VariantPolicy(make_bandit(settings, attributes), counters, settings.bandit_sync_s)
    return DecisionModels(
        intent=saved.model,
        recommenders=SharedRecommenders(kb, counters, settings.data_dir),
        policy=policy,
        composer=ResponseComposer(kb),
        attributes=attributes,
        versions={"intent": saved.version, "bandit": policy.namespace, "kb": kb_version},
        metadata=saved.metadata,
    )


def experiment_for(settings: Settings) -> Experiment:
    return Experiment(settings.experiment_name, settings.experiment_holdout)


def kb_digest(kb_dir: str | Path) -> str:
    """A short digest of the KB's YAML files: the KB's version in decision records."""
    digest = hashlib.sha256()
    for path in sorted(Path(kb_dir).rglob("*.y*ml")):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]
