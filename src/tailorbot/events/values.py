"""Free key/value pairs (event metadata, profile attributes): bounds checked before pydantic
coerces anything, so a value is kept with the JSON type it came with or refused by name.

The log and the stores read JSON back with orjson, which keeps integers only up to 64 bits
(a bigger one silently comes back as a float) and has no NaN or infinity: such numbers are
refused at the door instead.

>>> free_pairs_problem("metadata", {"n": 2**64}, max_keys=4, max_key_chars=8, max_value_chars=8)
"metadata['n'] is an integer outside the signed 64-bit range the stores keep"
>>> free_pairs_problem("metadata", {"n": 1}, max_keys=4, max_key_chars=8, max_value_chars=8)
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import orjson

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
_NUL_ESCAPE = b"\\u0000"
_SCALARS = (str, int, float, bool, type(None))  # a metadata value's types (made once)


def scalar_problem(value: Any) -> str | None:
    """Why a JSON scalar cannot be kept as it is, or ``None``.

    >>> scalar_problem(float("nan")), scalar_problem(True), scalar_problem(2**63 - 1)
    ('is not a finite number', None, None)
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, int) and not INT64_MIN <= value <= INT64_MAX:
        return "is an integer outside the signed 64-bit range the stores keep"
    if isinstance(value, float) and not math.isfinite(value):
        return "is not a finite number"
    return None


def free_pairs_problem(
    name: str,
    pairs: Any,
    *,
    max_keys: int,
    max_key_chars: int,
    max_value_chars: int,
) -> str | None:
    """The first reason ``pairs`` (a dict, as parsed from JSON) break the bounds, or ``None``.

    Anything that is not a dict is left to the schema's own type check.
    """
    if not isinstance(pairs, dict):
        return None
    if len(pairs) > max_keys:
        return f"{name} has {len(pairs)} keys; at most {max_keys} are accepted"
    for key, value in pairs.items():
        if not isinstance(key, str):
            continue
        if not key:
            return f"{name} has an empty key"
        if len(key) > max_key_chars:
            return f"{name} key {key[:16]!r}... is longer than {max_key_chars} characters"
        if isinstance(value, str) and len(value) > max_value_chars:
            return f"{name}[{key!r}] is longer than {max_value_chars} characters"
        if not isinstance(value, _SCALARS):  # one reason, not a union's
            kind = "an array" if isinstance(value, list) else "an object"
            return f"{name}[{key!r}] must be a string, a number, a boolean or null, not {kind}"
        problem = scalar_problem(value)
        if problem is not None:
            return f"{name}[{key!r}] {problem}"
    return None


def without_nul(
    event: dict[str, Any], text_fields: Iterable[str], pairs_fields: Iterable[str]
) -> dict[str, Any]:
    """``event`` with every U+0000 removed from its free text: the strings of
    ``text_fields``, and the string keys and values of the ``pairs_fields`` dicts.

    PostgreSQL's ``jsonb`` (the archive) refuses U+0000 in a text, and no chat message
    needs one, so the door removes it. Every other value is left as it is, for the schema to
    refuse a NUL in it: removed from an id, ``"zz\\x00top"`` would count for user ``zztop``.
    Nothing deeper is walked (no free-text value may be a container): a list nested 500
    deep costs no recursion here, and the schema refuses it.

    >>> without_nul({"text": "a\\x00b", "metadata": {"k\\x00": "\\x00"}, "user_id": "u\\x00"},
    ...             ("text",), ("metadata",))
    {'text': 'ab', 'metadata': {'k': ''}, 'user_id': 'u\\x00'}
    >>> clean = {"text": "a", "metadata": {"k": 1}}
    >>> without_nul(clean, ("text",), ("metadata",)) is clean
    True
    """
    if not _may_hold_nul(event):
        return event  # the common case, without a copy
    cleaned = dict(event)
    for name in text_fields:
        if name in cleaned:
            cleaned[name] = _text_without_nul(cleaned[name])
    for name in pairs_fields:
        pairs = cleaned.get(name)
        if isinstance(pairs, dict):
            cleaned[name] = {_text_without_nul(k): _text_without_nul(v) for k, v in pairs.items()}
    return cleaned


def _may_hold_nul(value: Any) -> bool:
    """False only when no string in ``value`` holds U+0000: orjson writes that character as
    the escape ``\\u0000`` (a text with a backslash before ``u0000`` is a false alarm, which
    only costs the walk). One C call instead of a Python walk of every value of an event."""
    try:
        return _NUL_ESCAPE in orjson.dumps(value)
    except TypeError:  # not plain JSON for orjson (an int past 64 bits, nested past 254...)
        return True


def _text_without_nul(value: Any) -> Any:
    return value.replace("\x00", "") if isinstance(value, str) and "\x00" in value else value
