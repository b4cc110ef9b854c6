"""The recognizer interface: find one kind of PII in a text.

Shaped like Presidio's ``EntityRecognizer.analyze`` (an entity type and character spans), so
wrapping a Presidio recognizer, a dictionary lookup or a model is a few lines. The
:class:`~tailorbot.events.redact.Redactor` runs recognizers after its built-in kinds, on the
text as it stands then, and replaces each span with :attr:`Recognizer.placeholder`.

>>> class Shouting(Recognizer):
...     kind = "shouting"
...     def find(self, text):
...         return [(i, i + 4) for i in range(len(text) - 3) if text[i:i + 4] == "HEY!"]
>>> r = Shouting()
>>> r.placeholder, list(r.find("oh HEY! you"))
('<SHOUTING>', [(3, 7)])
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable


class Recognizer(ABC):
    """Finds one kind of PII.

    A subclass sets :attr:`kind` (lower-case, ``[a-z][a-z0-9_]*``) and implements
    :meth:`find`. It must be cheap to call once per text at the door and safe to call from
    several threads.
    """

    kind: str

    @property
    def placeholder(self) -> str:
        """What replaces each span: ``<KIND>``."""
        return f"<{self.kind.upper()}>"

    @abstractmethod
    def find(self, text: str) -> Iterable[tuple[int, int]]:
        """``(start, end)`` character spans of this kind in ``text``; any order, may overlap."""
