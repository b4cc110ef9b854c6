"""The one-way id under which an erased user's watermark is kept (log, store, archive).

After erasure nothing keeps the user id itself; only this digest, so that events of the user
still in flight can be recognised and dropped.

>>> len(user_digest("u1")), user_digest("u1") == user_digest("u1")
(64, True)
"""

from __future__ import annotations

import hashlib


def user_digest(user_id: str) -> str:
    """SHA-256 of the user id with a fixed domain prefix, as 64 hex digits."""
    return hashlib.sha256(b"tailorbot-erasure:" + user_id.encode()).hexdigest()
