"""Checks and encodings of settings values that are more than a type and a bound: PII
patterns and recognizer specs, Rasa slot mappings and domain responses, and a value as a
``TAILORBOT_*`` variable. :class:`tailorbot.config.Settings` declares the settings and calls
these from its validators.

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
from pathlib import Path
from typing import Any

import yaml
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


def rasa_domain_responses(path: Path) -> dict[str, list[dict[str, Any]]]:
    """The ``responses`` of a Rasa domain file, or of every YAML file under a directory (as
    Rasa reads a domain directory; a name in two files: the first in path order wins).
    A ValueError says, on one line, which file is wrong and why."""
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.suffix in (".yml", ".yaml") and p.is_file())
        if not files:
            raise ValueError(f"{path}: a directory without .yml or .yaml files")
    elif path.is_file():
        files = [path]
    else:
        raise ValueError(f"{path}: no such file or directory")
    found: dict[str, list[dict[str, Any]]] = {}
    for file in files:
        for name, variations in _file_responses(file).items():
            found.setdefault(name, variations)
    return found


def _file_responses(file: Path) -> dict[str, list[dict[str, Any]]]:
    try:
        with file.open("rb") as stream:
            content = yaml.load(stream, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except OSError as exc:
        raise ValueError(f"{file}: cannot be read: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or exc
        raise ValueError(f"{file}: not valid YAML{where}: {problem}") from None
    if content is None:  # an empty file: nothing in it
        return {}
    if not isinstance(content, dict):
        raise ValueError(f"{file}: a Rasa domain is a mapping, not a {type(content).__name__}")
    responses = content.get("responses") or {}
    if not isinstance(responses, dict):
        raise ValueError(f"{file}: responses must map each name to a list of variations")
    for name, variations in responses.items():
        where = f"{file}: responses.{name}"
        if not isinstance(variations, list) or not all(isinstance(v, dict) for v in variations):
            raise ValueError(f"{where}: expected a list of variations (mappings)")
        for number, variation in enumerate(variations):
            _check_variation(f"{where}[{number}]", variation)
    return {str(name): variations for name, variations in responses.items()}


def _check_variation(where: str, variation: dict[str, Any]) -> None:
    if not isinstance(variation.get("text", ""), str):
        raise ValueError(f"{where}: text must be a string")
    if not isinstance(variation.get("channel", ""), str):
        raise ValueError(f"{where}: channel must be a string")
    condition = variation.get("condition", [])
    if not isinstance(condition, list) or not all(
        isinstance(c, dict)
        and c.get("type") == "slot"
        and isinstance(c.get("name"), str)
        and "value" in c
        for c in condition
    ):
        raise ValueError(f"{where}: condition must be a list of {{type: slot, name, value}}")


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
