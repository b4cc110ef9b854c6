"""The bandit's context: the stream processor's context vector, the conversation's channel and
language (what every chatbot sends with a message), chosen profile attributes, and per
candidate variant the customer's own memory of it (action features).

>>> ctx = AttributeContext(("new_account", "segment=business"))
>>> ctx.names
('attr_new_account', 'attr_segment=business')
>>> ctx.values({"attributes": {"new_account": True, "segment": "consumer"}})
{'attr_new_account': 1.0, 'attr_segment=business': 0.0}
>>> asked = request_features({"channel": "email"}, {"language": "es"})
>>> asked["channel_email"], asked["channel_chat"], asked["language_non_default"]
(1.0, 0.0, 1.0)
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from typing import Any

from tailorbot.compiled import native
from tailorbot.features.context_vector import CONTEXT_KEYS, TIER_KEYS, context_vector
from tailorbot.features.segment_memory import SegmentVariantStats
from tailorbot.features.view import DEFAULT_LANGUAGE

# Per candidate variant (cb_explore_adf-style action features), each in [0, 1]:
# own_reward: the customer's recency-weighted mean reward with the variant, shrunk towards the
#   segment's mean by OWN_PRIOR_WEIGHT pseudo-outcomes (so a cold-start customer reads as
#   their segment); own_evidence: weight / (weight + OWN_PRIOR_WEIGHT); segment_reward: the
#   segment's smoothed mean reward with the variant.
ACTION_KEYS: tuple[str, ...] = ("own_reward", "own_evidence", "segment_reward")
OWN_PRIOR_WEIGHT = 2.0
NO_SEGMENT_STATS = SegmentVariantStats()

# Support channels every deployment knows; any other channel reads 0 on all four.
CHANNELS = ("chat", "email", "voice", "messaging")
CHANNEL_KEYS = tuple((c, f"channel_{c}") for c in CHANNELS)
REQUEST_KEYS = (*(key for _, key in CHANNEL_KEYS), "language_non_default")
# What the A/B control's bandit sees: the conversation's channel and language and the
# account's tier group, which a bot knows of any customer; none of the customer's history,
# segment, attributes or memory. The strongest control is the best policy without those.
NON_PERSONAL_KEYS: tuple[str, ...] = (*REQUEST_KEYS, *(key for _, key in TIER_KEYS))
_NON_PERSONAL = frozenset(NON_PERSONAL_KEYS)


class AttributeContext:
    """Profile attributes as bandit features, declared once (see ``Settings.context_attributes``).

    ``"name"`` reads a bool (0/1) or a number clipped to [0, 1]; ``"name=value"`` is 1.0 when the
    attribute equals ``value`` (compared as text). Missing attributes read 0.0.
    """

    def __init__(self, specs: Sequence[str]) -> None:
        self.specs = tuple(specs)
        self._parsed = [spec.partition("=") for spec in self.specs]
        self.names = tuple(f"attr_{spec}" for spec in self.specs)

    def values(self, profile: Mapping[str, Any] | None) -> dict[str, float]:
        attributes = (profile or {}).get("attributes") or {}
        out: dict[str, float] = {}
        for name, (key, eq, expected) in zip(self.names, self._parsed, strict=True):
            value = attributes.get(key)
            if eq:
                out[name] = 1.0 if value is not None and str(value) == expected else 0.0
            elif isinstance(value, bool):
                out[name] = float(value)
            elif isinstance(value, int | float) and math.isfinite(value):
                out[name] = min(1.0, max(0.0, float(value)))
            else:
                out[name] = 0.0
        return out


def feature_names(attributes: AttributeContext) -> list[str]:
    """The bandit's declared features (it adds its own bias term)."""
    generic = [k for k in CONTEXT_KEYS if k != "bias"] + list(REQUEST_KEYS)
    return generic + list(attributes.names) + list(ACTION_KEYS)


def request_features(
    request: Mapping[str, Any] | None, profile: Mapping[str, Any] | None
) -> dict[str, float]:
    """The conversation's channel (one-hot over :data:`CHANNELS`) and whether its language
    (the request's, else the profile's) differs from the default one."""
    return dict(_request_one_hot(*_asked(request, profile)))


def _asked(
    request: Mapping[str, Any] | None, profile: Mapping[str, Any] | None
) -> tuple[str, bool]:
    """The conversation's channel, and whether its language is not the default one."""
    request = request or {}
    channel = request.get("channel") or "chat"
    language = request.get("language") or (profile or {}).get("language") or DEFAULT_LANGUAGE
    return channel, str(language).lower() != DEFAULT_LANGUAGE


@functools.lru_cache(maxsize=1024)  # a bot's few channels, two language cases
def _request_one_hot(channel: str, other_language: bool) -> dict[str, float]:
    """:func:`request_features`' values, made once per pair. Shared: copied, never changed."""
    out = {key: 1.0 if channel == c else 0.0 for c, key in CHANNEL_KEYS}
    out["language_non_default"] = 1.0 if other_language else 0.0
    return out


def decision_context(
    view: Mapping[str, Any] | None,
    profile: Mapping[str, Any] | None,
    attributes: AttributeContext,
    request: Mapping[str, Any] | None = None,
) -> dict[str, float]:
    """Without a view (no personalization consent) the context is empty: the bias alone.
    ``request`` is the personalize request's context (``channel``, ``language``)."""
    if view is None:
        return {}
    context = context_vector(view)  # a dict of its own: the other parts go into it
    context.update(_request_one_hot(*_asked(request, profile)))
    context.update(attributes.values(profile))
    return context


def non_personal(context: Mapping[str, float]) -> dict[str, float]:
    """The part of a decision context the A/B control may see (:data:`NON_PERSONAL_KEYS`).

    >>> non_personal({"channel_email": 1.0, "csat": 0.2, "tier_vip": 1.0, "own_reward": 0.9})
    {'channel_email': 1.0, 'tier_vip': 1.0}
    """
    return {key: value for key, value in context.items() if key in _NON_PERSONAL}


def action_features(
    view: Mapping[str, Any] | None,
    variants: Sequence[str],
    segments: SegmentVariantStats = NO_SEGMENT_STATS,
) -> dict[str, dict[str, float]]:
    """Per variant: :data:`ACTION_KEYS`. Without a view (no personalization consent) every
    variant gets none: the decision is made on the bias alone, as the context is.

    >>> view = {"segment": "vip", "variant_rewards": {"step_by_step": {"recent_weight": 2.0,
    ...     "recent_mean": 1.0}}}
    >>> feats = action_features(view, ["concise", "step_by_step"])
    >>> feats["step_by_step"]["own_reward"], feats["concise"]["own_reward"]
    (0.75, 0.5)
    """
    if view is None:
        return {variant: {} for variant in variants}
    compiled = getattr(native(), "action_features", None)  # None: not built, or before
    if compiled is not None:
        priors = segments.priors(view.get("segment"), variants)
        found = compiled(view, variants, priors, ACTION_KEYS, OWN_PRIOR_WEIGHT)
        if found is not None:  # None: a value of a type the feature view does not make
            # Annotated, not cast(): that builds the alias at every call (1,600 instructions).
            features: dict[str, dict[str, float]] = found
            return features
    return action_features_in_python(view, variants, segments)


def action_features_in_python(
    view: Mapping[str, Any],
    variants: Sequence[str],
    segments: SegmentVariantStats = NO_SEGMENT_STATS,
) -> dict[str, dict[str, float]]:
    """:func:`action_features` of a view in Python: the reference the compiled
    ``action_features`` (csrc/context.c) is tested against, and the path for what it does
    not read."""
    memory = view.get("variant_rewards") or {}
    segment = view.get("segment")
    out: dict[str, dict[str, float]] = {}
    for variant in variants:
        prior = segments.mean(segment, variant)
        own = memory.get(variant) or {}
        recent = own.get("recent_mean")
        weight = float(own["recent_weight"]) if recent is not None else 0.0
        mean = float(recent) if recent is not None else prior
        out[variant] = {
            "own_reward": (weight * mean + OWN_PRIOR_WEIGHT * prior) / (weight + OWN_PRIOR_WEIGHT),
            "own_evidence": weight / (weight + OWN_PRIOR_WEIGHT),
            "segment_reward": prior,
        }
    return out
