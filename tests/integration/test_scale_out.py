"""``tailorbot serve --workers 2`` on real processes, sharing one Redis log and stores
(features, profiles, erasure, decisions and their feedback). The end state is checked against
a from-scratch recomputation over the events in the log: every accepted event counted, none
twice. (Stream workers killed mid-batch: test_killed_members.py.)
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tailorbot.config import Settings
from tailorbot.log import EventLog, open_log
from tailorbot.store import Stores, open_stores
from tests.helpers import REDIS_URL, closed_port, redis_namespace, wait_until
from tests.integration.cluster import (
    SESSION_TIMEOUT_S,
    TAILORBOT,
    WAIT_S,
    Process,
    batches,
    expected_view,
    lag,
    live_members,
    logged_events,
    make_events,
    member_pids,
    tailorbot_env,
)
from tests.models.intent.support import small_dataset, write_csv

pytestmark = pytest.mark.integration


def test_serve_with_two_processes_shares_features_and_decision_state(tmp_path: Path) -> None:
    with redis_namespace() as prefix:
        port = closed_port()
        settings = Settings.load(
            data_dir=tmp_path, partitions=8, port=port, seed=5,
            log_url=f"{REDIS_URL}?prefix={prefix}&session_timeout={SESSION_TIMEOUT_S}",
            store_url=f"{REDIS_URL}?prefix={prefix}",
        )  # fmt: skip
        env = tailorbot_env(
            data_dir=tmp_path, port=port, partitions=8, seed=5,
            log_url=settings.log_url, store_url=settings.store_url,
        )  # fmt: skip
        # A small intent model (seconds to train), so that /v1/personalize serves: the
        # defaults without a search (a search's 12 trials took 18 s of this test's 23).
        data = write_csv(tmp_path / "intents.csv", small_dataset())
        trained = subprocess.run(
            [TAILORBOT, "train", "--data", data, "--no-search", "--folds", "2"],
            env=env, capture_output=True, text=True,
        )  # fmt: skip
        assert trained.returncode == 0, trained.stdout + trained.stderr
        server = Process(
            # A worker thread in each server process: two members of one consumer group.
            [TAILORBOT, "serve", "--workers", "2", "--worker", "thread", "--log-level", "warning"],
            env,
            tmp_path / "serve.out",
        )
        log = open_log(settings.resolved_log_url(), settings.partitions)
        stores = open_stores(settings.resolved_store_url())
        # No keep-alive: a new connection per request, which either process may accept.
        client = httpx.Client(
            base_url=f"http://127.0.0.1:{port}",
            timeout=30,
            limits=httpx.Limits(max_keepalive_connections=0),
        )
        try:
            TwoProcesses(server, settings, log, client).check(stores)
            # /metrics answers the sum of both processes, whichever one a scrape reaches
            for _ in range(4):
                text = client.get("/metrics").text
                assert 'tailorbot_server_processes{state="answered"} 2.0' in text
        finally:
            client.close()
            server.stop()
            log.close()
            stores.close()


class TwoProcesses:
    """The checks against one ``tailorbot serve --workers 2`` (a new connection per request,
    so that requests spread over both processes; each must answer the same)."""

    def __init__(
        self, server: Process, settings: Settings, log: EventLog, client: httpx.Client
    ) -> None:
        self.server = server
        self.settings = settings
        self.log = log
        self.client = client

    def call(self, method: str, path: str, **kwargs) -> httpx.Response:
        assert self.server.alive(), self.server.tail()
        return self.client.request(method, path, **kwargs)

    def drain(self) -> None:
        wait_until(lambda: lag(self.log, self.settings) == 0, "the workers to drain", WAIT_S)

    def check(self, stores: Stores) -> None:
        def workers_in_group() -> bool:
            assert self.server.alive(), self.server.tail()
            pids = member_pids(live_members(self.log, self.settings.consumer_group))
            return len(pids) == 2 and self.server.pid not in pids

        def serving() -> bool:
            # uvicorn's children listen only once their start-up (which joins the group) ends.
            try:
                return self.call("GET", "/healthz").status_code == 200
            except httpx.ConnectError:
                return False

        # Each server process runs its own stream worker: two members of one group.
        wait_until(workers_in_group, "a stream worker in each server process", WAIT_S)
        wait_until(serving, "the server to accept connections", WAIT_S)
        start = time.time() - 86400
        events = make_events(1200, users=25, seed=12, start=start, span_s=86000, tag="s")
        accepted: list[str] = []
        for batch in batches(events + events[:150], 100):  # the last batches re-send 150
            response = self.call("POST", "/v1/events", json={"events": list(batch)})
            assert response.status_code == 202, response.text
            accepted += [status["event_id"] for status in response.json()["results"]]
        users = sorted({e["user_id"] for e in events})
        decision_events = self.check_decisions(users[:20])
        self.drain()
        by_user = logged_events(self.log)
        logged = sorted(e["event_id"] for evs in by_user.values() for e in evs)
        assert logged == sorted(accepted + decision_events)
        self.check_features(by_user, expected_total=len(events) + len(decision_events))
        self.check_profile_and_erasure(users[-2:])
        assert stores.features.get(users[-1]) is not None

    def check_decisions(self, users: list[str]) -> list[str]:
        """A decision made by either process takes its feedback through whichever process
        accepts the connection, exactly once; every process reports the same shared A/B
        counters. Returns the ids of the events the decision plane logged."""
        decisions = []
        for i, user in enumerate(users):
            body = {"user_id": user, "session_id": f"{user}-live", "message": "where is my card?"}
            response = self.call("POST", "/v1/personalize", json=body)
            assert response.status_code == 200, response.text
            decision = response.json()
            assert decision["user"]["personalized"] is True, decision
            decisions.append((decision["decision_id"], 1 + i % 5, i % 2 == 0))
        for decision_id, rating, resolved in decisions:
            body = {"decision_id": decision_id, "rating": rating, "resolved": resolved}
            first = self.call("POST", "/v1/feedback", json=body)
            assert first.status_code == 200 and first.json()["applied"] is True, first.text
            again = self.call("POST", "/v1/feedback", json=body)  # maybe the other process
            assert again.status_code == 200 and again.json()["applied"] is False, again.text
        for _ in range(4):
            arms = self.call("GET", "/v1/experiment").json()["arms"].values()
            assert sum(arm["feedback"] for arm in arms) == len(decisions)
            assert sum(arm["csat"]["n"] for arm in arms) == len(decisions)
        return [
            f"{decision_id}-{suffix}"
            for decision_id, _, _ in decisions
            for suffix in ("message", "rating", "resolution")
        ]

    def check_features(self, by_user: dict[str, list[dict]], expected_total: int) -> None:
        """Every process serves each user's recomputation over the log; all counted once."""
        total = 0
        for user, user_events in by_user.items():
            for _ in range(2):
                response = self.call("GET", f"/v1/users/{user}/features")
                assert response.status_code == 200, response.text
                view = response.json()["features"]
                expected = expected_view(user, user_events, None, self.settings, view["as_of"])
                assert {k: view[k] for k in expected} == expected, user
            total += view["events_total"]
        assert total == expected_total

    def check_profile_and_erasure(self, users: list[str]) -> None:
        gold, gone = users
        # A profile written through one process is what every process serves.
        response = self.call("PUT", f"/v1/users/{gold}", json={"tier": "gold", "language": "de"})
        assert response.status_code == 200, response.text
        for _ in range(6):
            view = self.call("GET", f"/v1/users/{gold}/features").json()["features"]
            assert (view["tier"], view["language"]) == ("gold", "de")
        # An erasure through one process holds in every process and for both stream workers.
        assert self.call("DELETE", f"/v1/users/{gone}").status_code == 204
        for _ in range(6):
            assert self.call("GET", f"/v1/users/{gone}/features").status_code == 404
        # Events after the erasure are dated after it (those dated before it are dropped,
        # however late they arrive); within the door's 300 s future bound.
        late = make_events(40, 1, seed=13, start=time.time() + 61, span_s=200, tag="late")
        for e in late:
            e["user_id"] = gone
        assert self.call("POST", "/v1/events", json={"events": late}).status_code == 202
        self.drain()
        view = self.call("GET", f"/v1/users/{gone}/features").json()["features"]
        assert view["events_total"] == len(late)  # only what came after the erasure
