"""Feedback for a share of the decisions a personalize load was answered: the second stream of
a realistic load, since a bot reports how most conversations went.

The personalize loop hands each answer to :meth:`FeedbackStream.read_answer`, which keeps the
decision with probability ``share``. A second open loop, started ``delay_s`` later at
``share`` times the personalize rate, posts to ``/v1/feedback``: each request reports on the
oldest decision kept (about ``delay_s`` old, as a bot reports after the customer acted). The
report is a rating, whether the issue was resolved and, for half, a click on the first
article offered, drawn from a seeded generator. Those are the signals the stream worker turns
into the shared article counters the server re-reads. When no decision is waiting, an earlier
report is sent again. The server answers it ``applied: false``, and ``repeats`` counts it.

>>> stream = FeedbackStream(share=1.0)
>>> answer = b'{"decision_id": "d1", "articles": [{"id": "kb-1"}]}'
>>> stream.read_answer(200, answer)
>>> body = orjson.loads(stream.next_body(0))
>>> body["decision_id"], body["rating"] in RATINGS, isinstance(body["resolved"], bool)
('d1', True, True)
>>> stream.next_body(1) == stream.next_body(2), stream.repeats  # none waiting: the last again
(True, 2)
"""

from __future__ import annotations

import asyncio
import random
from collections import deque
from collections.abc import Coroutine
from typing import Any

import orjson
from loadgen import LoadResult, run_open_loop

PATH = "/v1/feedback"
RATINGS = (5, 5, 4, 4, 3, 2, 1)  # CSAT as support teams see it: mostly content


class FeedbackStream:
    def __init__(self, share: float, delay_s: float = 1.0, seed: int = 7) -> None:
        if not 0.0 < share <= 1.0:
            raise ValueError(f"share must be within (0, 1], got {share}")
        self.share = share
        self.delay_s = delay_s
        self.seed = seed
        self._rng = random.Random(seed)
        self._waiting: deque[tuple[str, str | None]] = deque()  # (decision id, first article)
        self._sent: list[bytes] = []
        self.repeats = 0

    def read_answer(self, status: int, body: bytes) -> None:
        """The personalize loop's ``read_answer``: keep this decision for a report, or not.
        Drawn before the body is parsed: the generator shares the machine with the server."""
        if status != 200 or self._rng.random() >= self.share:
            return
        answer = orjson.loads(body)
        articles = answer.get("articles") or []
        self._waiting.append((answer["decision_id"], articles[0]["id"] if articles else None))

    def next_body(self, i: int) -> bytes:
        """The feedback loop's body ``i``: a report on the oldest decision kept."""
        if not self._waiting:
            if not self._sent:
                raise RuntimeError("no decision was answered before the first feedback was due")
            self.repeats += 1
            return self._sent[-1]
        decision_id, article = self._waiting.popleft()
        report: dict[str, Any] = {
            "decision_id": decision_id,
            "rating": self._rng.choice(RATINGS),
            "resolved": self._rng.random() < 0.6,
        }
        if article is not None and self._rng.random() < 0.5:
            report["clicked_article_id"] = article
        body = orjson.dumps(report)
        self._sent.append(body)
        return body

    async def alongside(
        self,
        personalize: Coroutine[Any, Any, LoadResult],
        host: str,
        port: int,
        rate: float,
        duration_s: float,
    ) -> tuple[LoadResult, LoadResult]:
        """``personalize`` (a loop reading its answers through :meth:`read_answer`) and the
        feedback loop beside it: (personalize's result, feedback's)."""

        async def feedback() -> LoadResult:
            await asyncio.sleep(self.delay_s)
            return await run_open_loop(
                host,
                port,
                PATH,
                self.next_body,
                rate=rate * self.share,
                duration_s=max(0.0, duration_s - self.delay_s),
            )

        answered, reported = await asyncio.gather(personalize, feedback())
        return answered, reported
