"""Load what decisions are made with, from the settings: the current intent model of the data
directory (the promoted one, else the newest), the knowledge base, the recommenders
(personalized, and the control's: no user view), the shared variant policy and the experiment.
"""

from __future__ import annotations

import hashlib
import logging
from datetime import UTC
from pathlib import Path

from tailorbot.config import Settings
from tailorbot.errors import Unavailable
from tailorbot.features.context import NON_PERSONAL_KEYS, AttributeContext, feature_names
from tailorbot.kb.loader import default_kb_dir, load_kb
from tailorbot.kb.model import KnowledgeBase
from tailorbot.kb.repository import KBRepository
from tailorbot.models.registry import ModelNotFoundError, load_current
from tailorbot.services.decisions.experiment import CONTROL_BANDIT, Experiment
from tailorbot.services.decisions.live_kb import kb_version_label
from tailorbot.services.decisions.live_models import DecisionModels
from tailorbot.services.decisions.model_swap import warm_up
from tailorbot.services.decisions.policy import VariantPolicy, serving_policy
from tailorbot.services.decisions.recommenders import SharedRecommenders
from tailorbot.services.decisions.responses import ResponseComposer
from tailorbot.store.base import CounterStore

logger = logging.getLogger(__name__)


class ModelMissing(Unavailable):
    code = "no_model"


def load_decision_models(
    settings: Settings, counters: CounterStore, kb_source: KBRepository | None = None
) -> DecisionModels:
    """Raises :class:`ModelMissing` (503) when the data directory has no intent model.

    With ``kb_source`` the KB is the live one (its version in force), else ``kb_dir``'s.
    """
    try:
        saved = load_current(settings.data_dir, kind="intent")
    except ModelNotFoundError as exc:
        logger.warning("no intent model in %s: %s", settings.data_dir, exc)
        # no path in the answer: it goes to clients (and to an unauthenticated /readyz)
        raise ModelMissing(
            "no intent model: train one with `tailorbot train` in the server's data "
            "directory (bundled Banking77 by default)"
        ) from exc
    warm_up(saved.model)  # the lazy tables load here, not in the first customer's request
    kb_dir = settings.kb_dir or default_kb_dir()
    if kb_source is not None:
        version, kb = kb_source.load()
        kb_version = kb_version_label(version)
    else:
        kb, kb_version = load_kb(kb_dir), kb_digest(kb_dir)
    attributes = AttributeContext(settings.context_attributes)
    policy = serving_policy(settings, counters, feature_names(attributes))
    composer = ResponseComposer(kb)
    return DecisionModels(
        control=control_policy(settings, counters, composer.variant_names),
        intent=saved.model,
        recommenders=SharedRecommenders(kb, counters, settings.data_dir),
        policy=policy,
        composer=composer,
        attributes=attributes,
        versions={"intent": saved.version, "bandit": policy.namespace, "kb": kb_version},
        metadata=saved.metadata,
    )


def control_policy(
    settings: Settings, counters: CounterStore, variants: list[str]
) -> VariantPolicy | None:
    """The A/B control: a bandit over the same variants that sees the non-personal context
    only (channel, language, tier group; the default), or ``None`` when the operator names a
    fixed ``control_variant`` (which the KB must have)."""
    if settings.control_variant is None:
        return serving_policy(settings, counters, NON_PERSONAL_KEYS, name="control")
    problem = control_variant_problem(settings, variants)
    if problem is not None:
        raise ValueError(problem)
    return None


def control_variant_problem(settings: Settings, variants: list[str]) -> str | None:
    """Why the fixed ``control_variant`` cannot be served by a KB with ``variants``, or None
    (``tailorbot serve`` checks it before it starts, the loader again at every load, the
    live KB before it publishes a change: :func:`kb_control_problems`)."""
    if settings.control_variant is None or settings.control_variant in variants:
        return None
    return (
        f"control_variant {settings.control_variant!r} is not a variant of the knowledge "
        f"base's templates ({', '.join(variants)})"
    )


def kb_control_problems(settings: Settings, kb: KnowledgeBase) -> list[tuple[str, str]]:
    """``[("control_variant", why)]`` when ``kb`` (a candidate live KB: a change, a seed)
    lacks the fixed control variant, else ``[]``: the live KB refuses such a change, which
    would leave the control serving another variant than the experiment reports."""
    problem = control_variant_problem(settings, ResponseComposer(kb).variant_names)
    return [] if problem is None else [("control_variant", problem)]


def control_name(settings: Settings) -> str:
    """What the control policy is, as ``GET /v1/experiment`` reports it."""
    if settings.control_variant is None:
        return CONTROL_BANDIT
    return f"fixed_variant:{settings.control_variant}"


def experiment_for(settings: Settings) -> Experiment:
    start = settings.experiment_start
    if start is not None and start.tzinfo is None:
        start = start.replace(tzinfo=UTC)  # a start without a zone is UTC, like event times
    return Experiment(
        settings.experiment_name,
        settings.experiment_holdout,
        control=control_name(settings),
        start=start.timestamp() if start is not None else None,
    )


def kb_digest(kb_dir: str | Path) -> str:
    """A short digest of the KB's YAML files: the KB's version in decision records."""
    digest = hashlib.sha256()
    for path in sorted(Path(kb_dir).rglob("*.y*ml")):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]
