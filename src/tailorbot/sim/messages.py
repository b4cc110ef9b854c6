"""What a simulated customer writes: a message drawn from labelled ``(text, intent)`` rows.

The demo passes Banking77 test rows, which the intent model never saw in training. A
customer asks about one of their recurring intents with probability ``recurring_share``
(each equally likely), and about any intent of the source otherwise; the text is then drawn
uniformly among the rows of that intent.

>>> source = MessageSource([("Where is my card?", "card_arrival"),
...                         ("My top-up failed", "top_up_failed")], recurring_share=1.0)
>>> source.intents
('card_arrival', 'top_up_failed')
>>> rng = np.random.default_rng(0)
>>> source.draw(rng, intents=["top_up_failed"])
('My top-up failed', 'top_up_failed')
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np


class MessageSource:
    """Labelled customer messages, grouped by intent.

    Parameters
    ----------
    rows
        ``(text, intent)`` pairs; empty texts are an error.
    recurring_share
        Probability that a message is about one of the customer's recurring intents.
    """

    def __init__(self, rows: Iterable[tuple[str, str]], recurring_share: float = 0.8) -> None:
        self.rows = rows
        self.recurring_share = recurring_share
        if not 0.0 <= recurring_share <= 1.0:
            raise ValueError(f"recurring_share must be within [0, 1], got {recurring_share!r}")
        self._texts: dict[str, list[str]] = {}
        for n, row in enumerate(rows):
            if len(row) != 2:
                raise ValueError(f"row {n} must be a (text, intent) pair, got {row!r}")
            text, intent = row
            if not (isinstance(text, str) and text.strip()):
                raise ValueError(f"row {n} has an empty text")
            if not (isinstance(intent, str) and intent):
                raise ValueError(f"row {n} has an empty intent")
            self._texts.setdefault(intent, []).append(text)
        if not self._texts:
            raise ValueError("a message source needs at least one (text, intent) row")
        self._intents = tuple(sorted(self._texts))

    @property
    def intents(self) -> tuple[str, ...]:
        return self._intents

    def draw(self, rng: np.random.Generator, intents: Sequence[str] = ()) -> tuple[str, str]:
        """One ``(text, intent)``; ``intents`` are the customer's recurring intents.

        Recurring intents the source does not know are skipped; with none left the intent
        is drawn uniformly from the source.
        """
        known = [i for i in intents if i in self._texts]
        if known and rng.random() < self.recurring_share:
            intent = known[int(rng.integers(len(known)))]
        else:
            intent = self._intents[int(rng.integers(len(self._intents)))]
        texts = self._texts[intent]
        return texts[int(rng.integers(len(texts)))], intent

    def __repr__(self) -> str:
        share = self.recurring_share
        return f"MessageSource(intents={len(self._intents)}, recurring_share={share})"
