"""A Locust user that behaves like a chatbot: each task is one conversation.

A conversation: ``session_started`` (POST /v1/events), ``--messages`` customer messages each
answered by POST /v1/personalize (with a short think time between them), POST /v1/feedback
on the last decision (a CSAT rating and whether it was resolved), then ``session_ended``.
Customers are drawn from ``TB_LOCUST_CUSTOMERS`` ids, so returning customers have features;
messages are the bundled Banking77 test sentences. A closed-loop load: each Locust user waits
for each answer (see personalize.py for the open-loop figure).

Against a running server (``tailorbot serve``, with a trained model)::

    .venv/bin/locust -f benchmarks/locustfile.py --headless --host http://127.0.0.1:8000 \\
        --users 20 --spawn-rate 10 --run-time 30s --csv /tmp/tailorbot-locust

Environment: ``TB_LOCUST_API_KEY`` (sent as X-API-Key when the server has one),
``TB_LOCUST_MESSAGES`` (messages per conversation, default 3), ``TB_LOCUST_CUSTOMERS``
(distinct customer ids, default 2000), ``TB_LOCUST_THINK_S`` (pause between messages,
default 0.5 s). Drop the ``--headless`` flag for Locust's web UI on :8089.
"""

from __future__ import annotations

import functools
import os
import random
import uuid
from datetime import UTC, datetime

from locust import HttpUser, between, task

MESSAGES = int(os.environ.get("TB_LOCUST_MESSAGES", "3"))
CUSTOMERS = int(os.environ.get("TB_LOCUST_CUSTOMERS", "2000"))
THINK_S = float(os.environ.get("TB_LOCUST_THINK_S", "0.5"))
API_KEY = os.environ.get("TB_LOCUST_API_KEY")


@functools.cache
def sentences() -> list[str]:
    from tailorbot.models.intent import default_dataset

    return list(default_dataset("test").texts)


def event(kind: str, user: str, session: str) -> dict[str, str]:
    return {
        "type": kind,
        "event_id": f"{session}-{kind}",
        "user_id": user,
        "session_id": session,
        "timestamp": datetime.now(UTC).isoformat(),
    }


class Chatbot(HttpUser):
    """One chatbot front end relaying customers' conversations to tailorbot."""

    wait_time = between(1.0, 3.0)  # between conversations

    def on_start(self) -> None:
        if API_KEY:
            self.client.headers["X-API-Key"] = API_KEY
        self.texts = sentences()

    @task
    def conversation(self) -> None:
        user = f"locust-{random.randrange(CUSTOMERS)}"
        session = uuid.uuid4().hex
        self._post("/v1/events", event("session_started", user, session), "/v1/events")
        decision = None
        for turn in range(MESSAGES):
            if turn:
                self._think()
            body = {"user_id": user, "session_id": session, "message": random.choice(self.texts)}
            decision = self._post("/v1/personalize", body, "/v1/personalize")
        if decision is not None:
            feedback = {
                "decision_id": decision["decision_id"],
                "rating": random.randint(1, 5),
                "resolved": random.random() < 0.6,
            }
            self._post("/v1/feedback", feedback, "/v1/feedback")
        self._post("/v1/events", event("session_ended", user, session), "/v1/events")

    def _post(self, path: str, body: dict, name: str) -> dict | None:
        with self.client.post(path, json=body, name=name, catch_response=True) as response:
            if response.status_code >= 400:
                response.failure(f"{response.status_code}: {response.text[:200]}")
                return None
            response.success()
            return response.json()

    def _think(self) -> None:
        import gevent

        gevent.sleep(THINK_S)
