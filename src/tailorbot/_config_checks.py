"""Checks and encodings of settings values that are more than a type and a bound: PII
patterns and recognizer specs, Rasa slot mappings, and a value as a ``TAILORBOT_*`` variable.
:class:`tailorbot.config.Settings` declares the settings and calls these from its validators.

>>> rasa_slot_targets(["tier=tier", "plan=attributes.plan"], ("name", "tier"))
{'tier': 'tier', 'plan': 'attributes.plan'}
>>> check_redact_patterns({"order": r"ORD-\\d+", "empty": "x*"}, ("email",))
Traceback (most recent call last):
ValueError: empty: 'x*' matches the empty string
>>> env_text(("en", "de")), env_text(True)
('["en", "de"]', 'true')
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import SecretStr

_RECOGNIZER_KIND = re.compile(r"^[a-z][a-z0-9_]{0,31}$")


def check_recognizer_specs(specs: Iterable[str]) -> None:
    """Each spec is ``'package.module:Name'`` (imported later, by the redactor)."""
    for spec in specs:
        module, colon, attribute = spec.partition(":")
        if not (colon and module and attribute):
            raise ValueError(f"{spec!r}: expected 'package.module:Name'")


def check_redact_patterns(patterns: Mapping[str, str], builtin_kinds: Iterable[str]) -> None:
    """Each ``{kind: regular expression}`` names a new kind and compiles to a pattern that
    cannot match the empty string (it would mark every position of every text)."""
    builtin = set(builtin_kinds)
    for kind, pattern in patterns.items():
        if not _RECOGNIZER_KIND.match(kind):
            raise ValueError(f"kind {kind!r}: expected lower-case [a-z][a-z0-9_]*, <= 32")
        if kind in builtin:
            raise ValueError(f"kind {kind!r} is built-in; choose it in redact_kinds")
        try:
            compiled = re.compile(pattern)
        except re.error as exc:
            raise ValueError(
                f"{kind}: {pattern!r} is not a valid regular expression: {exc}"
            ) from None
        if compiled.fullmatch("") is not None:
            raise ValueError(f"{kind}: {pattern!r} matches the empty string")


def rasa_slot_targets(entries: Iterable[str], profile_fields: Iterable[str]) -> dict[str, str]:
    """``'slot=field'`` entries as ``{slot: field}``, field a profile field or
    ``attributes.<name>``; a ValueError names the first bad entry."""
    fields = tuple(profile_fields)
    found = {}
    for entry in entries:
        slot, _, target = entry.partition("=")
        prefix, _, attribute = target.partition(".")
        valid_target = target in fields or (prefix == "attributes" and attribute)
        if not slot or not valid_target:
            raise ValueError(
                f"rasa_slot_attributes: {entry!r} is not 'slot=field' with field one of "
                f"{', '.join(fields)} or attributes.<name>"
            )
        found[slot] = target
    return found


def env_text(value: Any) -> str:
    """A settings value as the text of its environment variable (what the settings parse
    back): secrets revealed, booleans as true/false, sequences and mappings as JSON."""
    if isinstance(value, SecretStr):
        value = value.get_secret_value()
    elif isinstance(value, bool):
        value = "true" if value else "false"
    elif isinstance(value, tuple | list | dict):
        value = json.dumps(list(value) if isinstance(value, tuple) else value)
    return str(value)
