"""The bandit's context: the stream processor's context vector plus chosen profile attributes.

>>> ctx = AttributeContext(("new_account", "segment=business"))
>>> ctx.names
('attr_new_account', 'attr_segment=business')
>>> ctx.values({"attributes": {"new_account": True, "segment": "consumer"}})
{'attr_new_account': 1.0, 'attr_segment=business': 0.0}
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from tailorbot.features.view import CONTEXT_KEYS, context_vector


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
    return [k for k in CONTEXT_KEYS if k != "bias"] + list(attributes.names)


def decision_context(
    view: Mapping[str, Any] | None,
    profile: Mapping[str, Any] | None,
    attributes: AttributeContext,
) -> dict[str, float]:
    """Without a view (no personalization consent) the context is empty: the bias alone."""
    if view is None:
        return {}
    return {**context_vector(view), **attributes.values(profile)}
