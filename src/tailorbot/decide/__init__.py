"""The decision plane: personalize and feedback (see docs/decisions.md).

:func:`build_decision_service` loads what a server needs from its settings: the newest intent
model of the data directory, the knowledge base, the recommenders (personalized and the
intent-only control) and the shared variant policy.
"""

from __future__ import annotations

import hashlib

from tailorbot.decide.context import AttributeContext
from tailorbot.decide.experiment import Experiment
from tailorbot.decide.policy import VariantPolicy, make_bandit
from tailorbot.decide.recommenders import SharedRecommenders
from tailorbot.decide.responses import ResponseComposer
from tailorbot.decide.service import DecisionService
from tailorbot.engine import Engine
from tailorbot.errors import Unavailable
from tailorbot.kb.loader import default_kb_dir, load_kb
from tailorbot.models.registry import ModelNotFoundError, latest


class ModelMissing(Unavailable):
    code = "no_model"


def build_decision_service(engine: Engine) -> DecisionService:
    """Raises :class:`ModelMissing` (503) when the data directory has no intent model."""
    settings = engine.settings
    try:
        saved = latest(settings.data_dir, kind="intent")
    except ModelNotFoundError as exc:
        raise ModelMissing(
            f"no intent model in {settings.data_dir}: train one with "
            f"`tailorbot train --data-dir {settings.data_dir}` (bundled Banking77 by default)"
        ) from exc
    kb_dir = settings.kb_dir or default_kb_dir()
    kb = load_kb(kb_dir)
    attributes = AttributeContext(settings.context_attributes)
    policy = VariantPolicy(make_bandit(settings, attributes), engine.store, settings.bandit_sync_s)
    return DecisionService(
        engine=engine,
        intent_model=saved.model,
        recommenders=SharedRecommenders(kb, engine.store),
        policy=policy,
        composer=ResponseComposer(kb),
        model_versions={
            "intent": saved.version,
            "bandit": policy.namespace,
            "kb": _kb_digest(kb_dir),
        },
        attributes=attributes,
        experiment=Experiment(settings.experiment_name, settings.experiment_holdout),
        control_variant=settings.control_variant,
    )


def _kb_digest(kb_dir: object) -> str:
    from pathlib import Path

    digest = hashlib.sha256()
    for path in sorted(Path(str(kb_dir)).rglob("*.y*ml")):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


__all__ = ["DecisionService", "ModelMissing", "build_decision_service"]
