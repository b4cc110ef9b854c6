"""The article ids of the live knowledge base, for checks at the door.

Articles can be added and removed while the server runs (``/v1/kb``); the ids are re-read
when the KB's version changed, looked at no more often than every ``poll_s`` seconds (a
version check is one small file read), so a change made by another process is accepted
within ``poll_s``. A change made by this process calls :meth:`KnowledgeArticles.refresh`
(through ``Runtime.reload_kb``), so it is accepted at once.

>>> import tempfile
>>> from tailorbot.kb import default_kb_dir
>>> from tailorbot.kb.repository import KBRepository
>>> ids = KnowledgeArticles(KBRepository(tempfile.mkdtemp(), default_kb_dir()), poll_s=2.0)
>>> "kb-verify-identity" in ids, "kb-invented" in ids
(True, False)
"""

from __future__ import annotations

import threading
import time
from typing import Any


class KnowledgeArticles:
    """``article_id in articles``: whether the live KB (a ``KBRepository``) has it."""

    def __init__(self, kb: Any, poll_s: float) -> None:
        self.kb = kb
        self.poll_s = poll_s
        self._lock = threading.Lock()
        self._ids: frozenset[str] = frozenset()
        self._version: int | None = None
        self._checked_at = float("-inf")

    def __contains__(self, article_id: object) -> bool:
        return article_id in self._current()

    def _current(self) -> frozenset[str]:
        if time.monotonic() - self._checked_at < self.poll_s and self._version is not None:
            return self._ids
        return self.refresh()

    def refresh(self) -> frozenset[str]:
        """Re-read the ids now if the version in force moved (after a change made here)."""
        with self._lock:
            if self._version is None or self.kb.version() != self._version:
                version, kb = self.kb.load()
                self._ids = frozenset(article.id for article in kb.articles)
                self._version = version
            self._checked_at = time.monotonic()
        return self._ids
