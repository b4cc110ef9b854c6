"""A feature state as the stores keep it: the features first, the dedupe ids apart.

A state's ``seen`` map (every applied event id above the cut, with its time: what the stream
worker deduplicates by) is the largest part of an active user's state, and no feature reads
it. The blob is the state without ``seen``, as JSON, then one NUL byte (JSON never holds one
unescaped), then

* for a state with fewer than :data:`APART_AT` ids, the ``seen`` map as JSON: the stream
  worker writes the whole blob at each batch of the user's events, as cheap for so few ids
  as a row of their own;
* from :data:`APART_AT` ids on, nothing: the store keeps the ids in rows of their own (a
  table, a sorted set), to which a write adds the ids its events brought and from which it
  drops those the state forgot (:class:`~tailorbot.store.base.DedupeDelta`), so that a busy
  user's write no longer carries every id again. A write with a delta keeps them apart,
  however few are left (:func:`keeps_apart`).

A decision, which reads a user at every message, decodes the part before the byte only. A
blob without the byte (a state without ``seen``, or one stored before the split) is one
JSON document.

>>> state = {"n": 2, "seen": {"e1": 1.0, "e2": 2.0}}
>>> encode_state(state, apart=False)
(b'{"n":2}\\x00{"e1":1.0,"e2":2.0}', None)
>>> blob, ids = encode_state(state, apart=True)
>>> blob, ids
(b'{"n":2}\\x00', {'e1': 1.0, 'e2': 2.0})
>>> decode_state(blob), decode_served(blob)
(({'n': 2}, True), {'n': 2})
>>> decode_state(b'{"n":2}\\x00{"e1":1.0}')  # the ids in the blob: not kept apart
({'n': 2, 'seen': {'e1': 1.0}}, False)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

DEDUPE_KEY = "seen"
SEPARATOR = b"\0"
# Dedupe ids from which a state's are kept apart. Measured (benchmarks/user_history.py and
# stream_apply.py, docs/benchmarks.md): rows of their own cost a user with a few events
# more than rewriting their ids in the blob (one more B-tree page written per user and
# batch), and save a user with hundreds.
APART_AT = 256


def keeps_apart(state: Mapping[str, Any], dedupe: object) -> bool:
    """Whether a store keeps apart the dedupe ids of ``state`` written with ``dedupe`` (a
    record's :class:`~tailorbot.store.base.DedupeDelta`, or None): always once they are
    apart (a delta), and from :data:`APART_AT` ids on."""
    return dedupe is not None or len(state.get(DEDUPE_KEY) or ()) >= APART_AT


def encode_state(state: Mapping[str, Any], apart: bool) -> tuple[bytes, dict[str, float] | None]:
    """The state's blob, and its dedupe ids when they are kept ``apart`` (else None: they
    are in the blob, or the state has none and its blob is one JSON document).

    :class:`TypeError` when a value is not JSON-serialisable, or ``seen`` is no mapping.
    """
    whole = state if isinstance(state, dict) else dict(state)  # any mapping, as before
    if DEDUPE_KEY not in whole:
        return _dumps(whole), None
    features = whole.copy()  # a C copy: a comprehension cost a microsecond a record more
    ids = features.pop(DEDUPE_KEY)
    if not isinstance(ids, dict):
        raise TypeError(f"a state's {DEDUPE_KEY!r} must map event ids to times, not {ids!r}")
    if apart:
        return _dumps(features) + SEPARATOR, ids
    return _dumps(features) + SEPARATOR + _dumps(ids), None


def ids_apart(blob: bytes | str) -> bool:
    """Whether a stored blob's dedupe ids are kept apart (it ends with the NUL byte), without
    decoding it."""
    return isinstance(blob, bytes) and blob.endswith(SEPARATOR)


def decode_state(blob: bytes | str, start: int = 0) -> tuple[dict[str, Any], bool]:
    """The state in ``blob[start:]``, and whether its dedupe ids are kept apart (then the
    state has none yet: the store adds those it keeps). A ``str`` is a state an older
    release stored as text: one document."""
    features, ids = _parts(blob, start)
    state: dict[str, Any] = orjson.loads(features)
    if ids is None:
        return state, False
    if not ids:
        return state, True
    state[DEDUPE_KEY] = orjson.loads(ids)
    return state, False


def decode_served(blob: bytes | str, start: int = 0) -> dict[str, Any]:
    """The state without its dedupe ids, from ``blob[start:]``: what the feature view reads.
    (A state stored as one document still has them.) For reading only: written back, it
    would have forgotten which events it applied."""
    served: dict[str, Any] = orjson.loads(_parts(blob, start)[0])
    return served


def _dumps(value: dict[str, Any]) -> bytes:
    try:
        return orjson.dumps(value)
    except TypeError as exc:
        raise TypeError(f"store values must be JSON-serialisable: {exc}") from exc


def _parts(blob: bytes | str, start: int) -> tuple[memoryview | str, memoryview | None]:
    """The features' JSON and what follows the NUL byte (None: no byte, one document),
    uncopied."""
    if isinstance(blob, str):
        return blob[start:], None
    view, end = memoryview(blob), blob.find(SEPARATOR, start)
    return (view[start:], None) if end < 0 else (view[start:end], view[end + 1 :])
