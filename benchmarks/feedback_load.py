"""Feedback for a share of the decisions a personalize load was answered: the second stream of
a realistic load, since a bot reports how most conversations went.

The personalize loop hands each answer to :meth:`FeedbackStream.read_answer`, which keeps the
decision with probability ``share``. A second open loop, started ``delay_s`` later at
``share`` times the personalize rate, posts to ``/v1/feedback``: each request reports on the
oldest decision kept (about ``delay_s`` old, as a bot reports after the customer acted). The
report is a rating, whether the issue was resolved and, for half, a click on the first
article offered, drawn from a seeded generator. Those are the signals the stream worker turns
into the shared article counters the server re-reads. When no decision is waiting, the last
report is sent again (the server answers ``applied: false``; ``repeats`` counts them), or,
before any decision was answered, a report on a decision that does not exist (404;
``without_decision`` counts them). The feedback loop runs ``delay_s`` less than the
personalize loop: over a run of S seconds, F (1 - delay_s / S) reports per decision.

>>> stream = FeedbackStream(share=1.0)
>>> orjson.loads(stream.next_body(0))["decision_id"] == NO_DECISION  # none answered yet
True
>>> answer = b'{"decision_id": "d1", "articles": [{"id": "kb-1"}]}'
>>> stream.read_answer(200, answer)
>>> body = orjson.loads(stream.next_body(1))
>>> body["decision_id"], body["rating"] in RATINGS, isinstance(body["resolved"], bool)
('d1', True, True)
>>> stream.next_body(2) == stream.next_body(3), stream.repeats  # none waiting: the last again
(True, 2)
"""

from __future__ import annotations

import argparse
import asyncio
import random
from collections import deque
from collections.abc import Callable, Coroutine
from typing import Any

import orjson
from loadgen import LoadResult, run_load, run_open_loop

PATH = "/v1/feedback"
NO_DECISION = "feedback-load-no-decision-yet"  # reported on before any decision was answered
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
        self._last: bytes | None = None
        self.repeats = 0
        self.without_decision = 0

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
            if self._last is None:
                self.without_decision += 1
                return orjson.dumps({"decision_id": NO_DECISION, "rating": 3})
            self.repeats += 1
            return self._last
        decision_id, article = self._waiting.popleft()
        report: dict[str, Any] = {
            "decision_id": decision_id,
            "rating": self._rng.choice(RATINGS),
            "resolved": self._rng.random() < 0.6,
        }
        if article is not None and self._rng.random() < 0.5:
            report["clicked_article_id"] = article
        self._last = body = orjson.dumps(report)
        return body

    def drain(self) -> list[bytes]:
        """A report on each decision kept, oldest first (none left waiting after)."""
        return [self.next_body(i) for i in range(len(self._waiting))]

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


def personalize_load(
    host: str,
    port: int,
    next_body: Callable[[int], bytes],
    *,
    rate: float,
    seconds: float,
    share: float,
    read_answer: Callable[[int, bytes], Any] | None = None,
) -> tuple[LoadResult, LoadResult | None, FeedbackStream | None]:
    """``POST /v1/personalize`` at ``rate`` for ``seconds`` (``read_answer``: what the caller
    keeps of each answer) and, with a ``share``, a fresh :class:`FeedbackStream` beside it:
    (personalize's result, the feedback's, the stream), the last two None without."""
    stream = FeedbackStream(share) if share else None

    def read(status: int, body: bytes) -> Any:
        if stream is not None:
            stream.read_answer(status, body)
        return read_answer(status, body) if read_answer is not None else None

    personalize = run_open_loop(
        host,
        port,
        "/v1/personalize",
        next_body,
        rate=rate,
        duration_s=seconds,
        read_answer=read if stream is not None or read_answer is not None else None,
    )
    if stream is None:
        return run_load(personalize), None, None
    answered, reported = run_load(stream.alongside(personalize, host, port, rate, seconds))
    return answered, reported, stream


def add_share_option(ap: argparse.ArgumentParser) -> None:
    """``--feedback-share F`` (within [0, 1]; 0, the default: no feedback)."""

    def share(text: str) -> float:
        value = float(text)
        if not 0.0 <= value <= 1.0:
            raise argparse.ArgumentTypeError(f"must be within [0, 1], got {text}")
        return value

    ap.add_argument(
        "--feedback-share",
        type=share,
        default=0.0,
        help="report on this share of the decisions through /v1/feedback, about 1 s after "
        "each (feedback_load.py)",
    )
