"""The feedback reports of the benchmarks (benchmarks/feedback_load.py): the HTTP load's
second stream, and the feedback the in-process benchmarks' users are given before anything
is measured (decision_profile.give_history drains one stream after the history)."""

from __future__ import annotations

import sys
from pathlib import Path

import orjson

from tailorbot.services.decisions.schemas import FeedbackRequest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from feedback_load import RATINGS, FeedbackStream  # noqa: E402


def _answer(n: int, articles: int) -> bytes:
    return orjson.dumps(
        {"decision_id": f"d{n}", "articles": [{"id": f"kb-{n}-{a}"} for a in range(articles)]}
    )


def test_drain_reports_once_on_each_decision_kept_oldest_first() -> None:
    stream = FeedbackStream(share=0.3, seed=11)
    for n in range(2000):
        stream.read_answer(200, _answer(n, n % 3))
    stream.read_answer(503, _answer(9999, 1))  # a shed request is never reported on
    reports = [FeedbackRequest.model_validate_json(body) for body in stream.drain()]
    ids = [int(r.decision_id[1:]) for r in reports]
    assert 500 <= len(ids) <= 700  # about the share (0.3 of 2,000)
    assert ids == sorted(set(ids))  # each once, oldest first
    assert all(r.rating in RATINGS for r in reports)
    clicked = [r for r in reports if r.clicked_article_id is not None]
    assert all(r.clicked_article_id == f"kb-{r.decision_id[1:]}-0" for r in clicked)
    assert 0 < len(clicked) < len(reports)  # about half click, when an article was offered
    assert stream.drain() == [] and stream.repeats == 0
