"""POST /v1/feedback answers the same on the lean ASGI path (api/fast.py) as through FastAPI's
routing: the same answers in order (applied once, then not), the same errors, the same
metrics label, and the same events in the log."""

from __future__ import annotations

import concurrent.futures
import functools
import threading
from pathlib import Path
from typing import Any

import pytest

from tailorbot.api.fast import FastFeedback
from tailorbot.events.codec import decode_event
from tests.api.conftest import error_gist, make_client, post_case
from tests.api.support import wait_until
from tests.services.decisions.conftest import SEED, save_model

MESSAGE = {"user_id": "u1", "session_id": "s1", "message": "my card has not arrived"}
DECISION = "<decision>"  # stands for the decision id the run's personalize call returned
ARTICLE = "<article>"  # and for the first article it offered

CASES: list[tuple[str, Any, dict[str, str]]] = [  # (what, body, headers), sent in this order
    ("rating and click", {"decision_id": DECISION, "rating": 5, "clicked_article_id": ARTICLE},
     {}),
    ("the same again", {"decision_id": DECISION, "rating": 5, "clicked_article_id": ARTICLE},
     {}),
    ("a later signal", {"decision_id": DECISION, "resolved": True}, {}),
    ("unknown decision", {"decision_id": "nope", "rating": 3}, {}),
    ("no signal", {"decision_id": DECISION}, {}),
    ("rating as text", {"decision_id": DECISION, "rating": "5"}, {}),
    ("rating out of range", {"decision_id": DECISION, "rating": 9}, {}),
    ("unknown article", {"decision_id": DECISION, "helpful_article_id": "kb-none"}, {}),
    ("extra field", {"decision_id": DECISION, "rating": 4, "x": 1}, {}),
    ("not json", b"{nope", {"content-type": "application/json"}),
    ("empty body", b"", {"content-type": "application/json"}),
    ("not an object", [1, 2], {}),
    ("no key", {"decision_id": DECISION, "rating": 4}, {"x-api-key": ""}),
    ("wrong key", {"decision_id": DECISION, "rating": 4}, {"x-api-key": "bad"}),
]  # fmt: skip


def filled(body: Any, decision_id: str, article: str) -> Any:
    if not isinstance(body, dict):
        return body
    names = {DECISION: decision_id, ARTICLE: article}
    return {k: names.get(v, v) if isinstance(v, str) else v for k, v in body.items()}


def answers(data_dir: Path, fast: bool) -> tuple[dict[str, tuple[int, Any]], list[str]]:
    """Each case's status and answer (whether it named the decision), and the types and ids
    of the events the feedback logged."""
    save_model(data_dir)
    out: dict[str, tuple[int, Any]] = {}
    with make_client(
        data_dir, seed=SEED, run_worker_in_server=False, fast_routes=fast, api_key="k"
    ) as client:
        lean = [m.cls for m in client.app.user_middleware if m.cls is FastFeedback]
        assert lean == ([FastFeedback] if fast else [])
        decided = client.post("/v1/personalize", json=MESSAGE, headers={"x-api-key": "k"})
        decision_id, article = decided.json()["decision_id"], decided.json()["articles"][0]["id"]
        for what, body, headers in CASES:
            body = filled(body, decision_id, article)
            response = post_case(client, "/v1/feedback", body, headers)
            payload = response.json()
            if response.status_code == 200:
                payload["decision_id"] = payload["decision_id"] == decision_id
            else:
                payload = error_gist(payload)
            out[what] = (response.status_code, payload)
        metrics = client.get("/metrics", headers={"x-api-key": "k"}).text
        assert 'tailorbot_request_latency_seconds_count{route="/v1/feedback"}' in metrics
        log = client.app.state.runtime.log
        events = [
            decode_event(record.value)
            for partition in log.end_offsets()
            for record in log.read(partition, 0, 1000)
        ]
        logged = [  # the event ids derive from the decision's: compared without it
            f"{e['type']} {e['event_id'].replace(decision_id, '')}"
            for e in events
            if e["type"] != "message"
        ]
    return out, sorted(logged)


def test_feedback_on_the_fast_path_answers_like_fastapi(tmp_path: Path) -> None:
    (fast, fast_log), (slow, slow_log) = (
        answers(tmp_path / "a", fast=True),
        answers(tmp_path / "b", fast=False),
    )
    assert fast == slow
    assert fast_log == slow_log
    assert fast["rating and click"] == (200, {"decision_id": True, "applied": True, "reward": 1.0})
    assert fast["the same again"][1]["applied"] is False
    assert fast["a later signal"] == (200, {"decision_id": True, "applied": False, "reward": None})
    assert fast["unknown decision"][0] == 404
    assert [fast[w][0] for w in ("no signal", "rating as text", "rating out of range")] == [422] * 3
    assert fast["unknown article"][0] == 422
    assert fast["unknown article"][1]["problems"] == ["helpful_article_id"]
    assert fast["extra field"][0] == 422 and fast["not an object"][0] == 422
    assert fast["not json"][0] == 400
    assert fast["empty body"][0] == 422 and fast["empty body"][1]["problems"] == ["(body)"]
    assert fast["no key"][0] == 401 and fast["wrong key"][0] == 403
    # the click (sent twice under one id: the stream worker counts it once), the rating, and
    # the later resolution
    assert [line.split()[0] for line in fast_log] == [
        "article_viewed",
        "article_viewed",
        "rating",
        "resolution",
    ]
    assert len(set(fast_log)) == 3


@pytest.mark.parametrize("fast", [True, False])
def test_feedback_waits_for_a_decision_another_process_writes_late(
    tmp_path: Path, fast: bool
) -> None:
    """Its batch does not wait for it (DecisionNotWritten): it is applied alone, once the
    other process's write lands within ``decision_wait_s``."""
    save_model(tmp_path)
    with make_client(
        tmp_path, seed=SEED, run_worker_in_server=False, fast_routes=fast, decision_wait_s=60
    ) as client:
        decided = client.post("/v1/personalize", json=MESSAGE).json()
        decisions = client.app.state.runtime.stores.decisions
        assert client.app.state.decider.recorder.wait_written(decided["decision_id"], 60)
        record = decisions.get(decided["decision_id"])
        late_id = f"{decided['decision_id']}-late"
        asked = threading.Event()
        writer = threading.Thread(
            target=lambda: asked.wait(60) and decisions.put(late_id, MESSAGE["user_id"], record)
        )
        writer.start()
        try:
            send = functools.partial(
                client.post, "/v1/feedback", json={"decision_id": late_id, "rating": 5}
            )
            with concurrent.futures.ThreadPoolExecutor(1) as pool:
                answer = pool.submit(send)
                # the feedback is waiting (its batch answered DecisionNotWritten) before the
                # write lands: another feedback still goes through the batcher meanwhile
                wait_until(
                    lambda: client.app.state.decider._feedback_batches.handled >= 1,
                    "the late feedback to leave its batch",
                )
                other = client.post(
                    "/v1/feedback", json={"decision_id": decided["decision_id"], "rating": 4}
                )
                assert other.status_code == 200 and other.json()["applied"] is True
                asked.set()
                late = answer.result(60)
        finally:
            asked.set()
            writer.join(60)
        assert late.status_code == 200, late.text
        assert late.json() == {"decision_id": late_id, "applied": True, "reward": 1.0}
