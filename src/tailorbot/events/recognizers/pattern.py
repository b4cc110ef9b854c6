"""A recognizer from one regular expression (what ``settings.redact_patterns`` builds)."""

from __future__ import annotations

import re
from collections.abc import Iterable

from tailorbot.events.recognizers.base import Recognizer


class PatternRecognizer(Recognizer):
    """Every non-empty match of ``pattern`` is PII of ``kind``.

    Parameters
    ----------
    kind
        The kind's name; its placeholder is ``<KIND>``.
    pattern
        A regular expression (Python :mod:`re` syntax).
    flags
        :mod:`re` flags to compile it with.

    >>> r = PatternRecognizer("ticket", r"\\bTCK-[0-9]{4}\\b")
    >>> r.placeholder, list(r.find("see TCK-1234 and TCK-12"))
    ('<TICKET>', [(4, 12)])
    """

    def __init__(self, kind: str, pattern: str, flags: int = 0) -> None:
        self.kind = kind
        self.pattern = pattern
        self.flags = flags
        self._regex = re.compile(pattern, flags)

    def find(self, text: str) -> Iterable[tuple[int, int]]:
        return [m.span() for m in self._regex.finditer(text) if m.end() > m.start()]
