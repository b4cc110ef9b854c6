"""Stream workers killed mid-batch on real processes (``tailorbot worker``, SQLite and Redis
backends), with a process applying feedback killed too.

Two workers share the consumer group while a chatbot sends events and asks for decisions.
A process applying the feedback of those decisions is SIGKILLed between a feedback's events
(in the log) and its mark (in the store); the chatbot sends every feedback again. One worker
is frozen past its session, so that the other takes its partitions while it still has a batch
in flight, and let go on (two owners for a while); then it is SIGKILLed between a batch's
store write and its commit, and the survivor takes its partitions and drains the log.

The end state is checked against a from-scratch recomputation over the events in the log:
every user's features, the shared article counters and the segments' variant memory, and what
feedback taught the experiment and the bandit, each exactly once per event in the log.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tailorbot.config import Settings
from tailorbot.events.codec import decode_event
from tailorbot.log import EventLog
from tailorbot.runtime import Runtime
from tailorbot.services.decisions import DecisionService
from tailorbot.services.decisions.feedback import article_event_id
from tailorbot.services.decisions.schemas import FeedbackRequest, PersonalizeRequest
from tests.helpers import REDIS_URL, redis_namespace, wait_until
from tests.integration.cluster import (
    SESSION_TIMEOUT_S,
    TAILORBOT,
    WAIT_S,
    Process,
    assert_features_match_log,
    batches,
    lag,
    live_members,
    logged_events,
    make_events,
    member_pids,
    tailorbot_env,
)
from tests.integration.faults import (
    catch_and_kill,
    freeze_through_a_hand_over,
    kill_between_write_and_commit,
    sqlite_files,
)
from tests.integration.shared_counters import (
    add_feedback,
    assert_feedback_learned_once,
    assert_worker_counters_match_log,
)
from tests.services.decisions.conftest import SEED, save_model

pytestmark = pytest.mark.integration


@pytest.fixture(params=["sqlite", "redis"])
def backend_urls(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[dict[str, str]]:
    """Log and stores URLs: SQLite files in one data dir, or Redis under a fresh prefix."""
    if request.param == "sqlite":
        yield {
            "log_url": f"sqlite:///{tmp_path}/log.db?session_timeout={SESSION_TIMEOUT_S}",
            "store_url": f"sqlite:///{tmp_path}/store.db",
        }
        return
    with redis_namespace() as prefix:  # require_server: skips on a laptop, fails under CI
        yield {
            "log_url": f"{REDIS_URL}?prefix={prefix}&session_timeout={SESSION_TIMEOUT_S}",
            "store_url": f"{REDIS_URL}?prefix={prefix}",
        }


def start_worker(settings: Settings, output: Path) -> Process:
    env = tailorbot_env(
        data_dir=settings.data_dir,
        log_url=settings.log_url,
        store_url=settings.store_url,
        partitions=settings.partitions,
        worker_batch=settings.worker_batch,
    )
    return Process([TAILORBOT, "worker"], env, output)


def accepted_ids(runtime: Runtime, events: list[dict]) -> list[str]:
    ids = []
    for batch in batches(events, 200):
        result = runtime.ingestion.ingest(list(batch))
        assert result.rejected == 0, result.results
        ids += [status["event_id"] for status in result.results]
    return ids


# Applies the feedback listed in a JSON file through a decision service of its own, as an API
# process would: the process the test kills while it applies them. It starts with the workers
# (its model loads meanwhile) and waits for the file, which the test writes (whole, by a
# rename) once the workers are busy; it gives up after argv[2] seconds without one.
FEEDBACK_SENDER = """
import json, os, sys, time
from tailorbot.config import Settings
from tailorbot.runtime import Runtime
from tailorbot.services.decisions.schemas import FeedbackRequest

runtime = Runtime(Settings.load())
service = runtime.load_decisions()
deadline = time.monotonic() + float(sys.argv[2])
while not os.path.exists(sys.argv[1]):
    if time.monotonic() > deadline:
        sys.exit("no feedback to apply came")
    time.sleep(0.005)
for body in json.loads(open(sys.argv[1]).read()):
    service.feedback(FeedbackRequest(**body))
service.close()
runtime.stop()
"""
DECISIONS = 150
CARD_MESSAGE = "my new card has still not arrived, where is it?"


def test_a_killed_worker_s_partitions_go_to_the_survivor_and_nothing_is_lost_or_doubled(
    backend_urls: dict[str, str], tmp_path: Path
) -> None:
    save_model(tmp_path)  # decisions and their feedback need an intent model
    settings = Settings.load(
        data_dir=tmp_path, partitions=8, worker_batch=50, run_worker_in_server=False, seed=SEED,
        **backend_urls,
    )  # fmt: skip
    runtime = Runtime(settings)
    crashes = KilledMembers(runtime, settings, tmp_path)
    try:
        accepted, decision_events = crashes.run()
        service = crashes.service
        log, group, stores = runtime.log, settings.consumer_group, runtime.stores
        assert log.committed(group) == log.end_offsets()
        logged = [e["event_id"] for evs in logged_events(log).values() for e in evs]
        # nothing lost between the door and the log (re-sent events are there twice)
        assert sorted(i for i in logged if i in set(accepted)) == sorted(accepted)
        assert set(logged) - set(accepted) == decision_events
        totals = assert_features_match_log(log, stores, settings, now=time.time())
        assert sum(totals.values()) == len(set(logged))  # none counted twice
        # the shared counters: the workers' article statistics and variant memory, and what
        # feedback taught the experiment and the bandit, each once per event in the log
        assert assert_worker_counters_match_log(log, stores, settings) > 0
        experiment, bandit = service.experiment.namespace, service.models.policy.namespace
        assert assert_feedback_learned_once(log, stores, experiment, bandit) == DECISIONS
    finally:
        crashes.close()
        runtime.stop()


class KilledMembers:
    """Two ``tailorbot worker`` processes share the group while a chatbot sends events. A
    process applying feedback is SIGKILLed mid-way (the chatbot then sends every feedback
    again); one worker is SIGKILLed between a batch's store write and its commit, its
    partitions go to the survivor, which reads that batch again and drains the log."""

    def __init__(self, runtime: Runtime, settings: Settings, tmp_path: Path) -> None:
        self.runtime = runtime
        self._service: DecisionService | None = None
        self.settings = settings
        self.tmp_path = tmp_path
        self.log = runtime.log
        start = time.time() - 2 * 86400
        # more than needed: the kill appends some before each try
        self.events = make_events(12000, users=40, seed=11, start=start, span_s=2 * 86400, tag="w")
        self.sent = 0
        self.accepted: list[str] = []

    def send(self, n: int) -> set[str]:
        """Send the next ``n`` events; returns the users of every event sent so far."""
        batch = self.events[self.sent : self.sent + n]
        self.sent += len(batch)
        self.accepted += accepted_ids(self.runtime, batch)
        return {e["user_id"] for e in self.events[: self.sent]}

    @property
    def service(self) -> DecisionService:
        assert self._service is not None, "run() loads the decision service"
        return self._service

    def close(self) -> None:
        if self._service is not None:
            self._service.close()

    def run(self) -> tuple[list[str], set[str]]:
        """Returns the ids of the accepted events (re-sent ones twice) and of the events the
        decisions and their feedback logged."""
        log, group = self.log, self.settings.consumer_group
        # The processes start first: their start-up (imports; the sender's model) overlaps
        # this one's loading of its decision service, and the first events and decisions.
        workers = [start_worker(self.settings, self.tmp_path / f"worker{i}.out") for i in range(2)]
        victim, survivor = workers
        feedback_file = self.tmp_path / "feedback.json"
        sender = self.start_feedback_sender(feedback_file)

        def both_in_group() -> bool:
            assert all(w.alive() for w in workers), "\n".join(w.tail() for w in workers)
            return member_pids(live_members(log, group)) == {w.pid for w in workers}

        def drained() -> bool:
            assert survivor.alive(), survivor.tail()
            return lag(log, self.settings) == 0

        try:
            self._service = self.runtime.load_decisions()
            self.send(1500)
            feedback = self.decide()
            wait_until(both_in_group, "both workers in the consumer group", WAIT_S)
            wait_until(lambda: sum(log.committed(group).values()) >= 300, "progress", WAIT_S)
            finished = self.kill_the_feedback_sender(sender, feedback, feedback_file)
            settings = self.settings
            files = sqlite_files(settings.resolved_log_url(), settings.resolved_store_url())
            freeze_through_a_hand_over(victim, survivor, log, group, lambda: self.send(25), files)
            caught = kill_between_write_and_commit(victim, log, self.runtime.stores, group,
                                                   lambda: self.send(25))  # fmt: skip
            assert caught, "the kill should land between a store write and its commit"
            # The chatbot goes on, sends every feedback again (it saw the sender fail) and
            # re-sends some events it already sent (same event_id).
            applied = sum(self.service.feedback(FeedbackRequest(**b)).applied for b in feedback)
            assert applied == DECISIONS - finished  # each unfinished one once, no other
            self.send(1000)
            self.accepted += accepted_ids(self.runtime, self.events[100:400])
            # The victim's partitions come to the survivor once the victim's session lapses.
            wait_until(drained, "the survivor to process every partition", WAIT_S)
            assert member_pids(live_members(log, group)) == {survivor.pid}
        finally:
            for process in (sender, *workers):
                process.stop()
        assert len(set(self.accepted)) == self.sent
        return self.accepted, self.decision_events(feedback)

    def decide(self) -> list[dict]:
        """``DECISIONS`` decisions (written, their message events logged); returns the
        feedback a chatbot would send for each."""
        users = sorted({e["user_id"] for e in self.events[:1500]})
        feedback = []
        for i in range(DECISIONS):
            request = PersonalizeRequest(
                user_id=users[i % len(users)], session_id=f"live-{i}", message=CARD_MESSAGE
            )
            answer = self.service.personalize(request)
            assert self.service.recorder.wait_written(answer.decision_id, timeout_s=WAIT_S)
            body = {"decision_id": answer.decision_id, "rating": 1 + i % 5, "resolved": i % 2 == 0}
            if answer.articles:
                body["helpful_article_id"] = answer.articles[0].id
            feedback.append(body)
        return feedback

    def start_feedback_sender(self, bodies: Path) -> Process:
        """A process that loads a decision service, waits for the feedback in ``bodies`` and
        applies it (FEEDBACK_SENDER)."""
        env = tailorbot_env(
            data_dir=self.settings.data_dir, log_url=self.settings.log_url,
            store_url=self.settings.store_url, partitions=self.settings.partitions,
            seed=self.settings.seed, run_worker_in_server=False,
        )  # fmt: skip
        return Process([sys.executable, "-c", FEEDBACK_SENDER, bodies, 5 * WAIT_S], env,
                       self.tmp_path / "sender.out")  # fmt: skip

    def kill_the_feedback_sender(self, sender: Process, feedback: list[dict], bodies: Path) -> int:
        """Give the sender ``feedback`` to apply and SIGKILL it between a feedback's events
        (in the log) and its mark with what it taught (in the store); returns how many feedbacks
        it had marked."""
        written = bodies.with_suffix(".tmp")
        written.write_text(json.dumps(feedback))
        written.rename(bodies)  # the sender never reads half a file
        decisions = self.runtime.stores.decisions
        watch = FeedbackWatch(self.log, decisions)

        def first_feedback() -> bool:
            assert sender.alive(), sender.tail()  # it cannot have applied them all yet
            watch.logged_not_marked()
            return bool(watch.logged)

        def all_marked() -> bool:  # nothing left to catch it in
            return len(watch.marked) == len(feedback)

        # the sender may still be loading its model: wait for its first feedback
        wait_until(first_feedback, "the sender's first feedback", WAIT_S)
        # Caught there by chance: the window is short since the store waits for a busy lock
        # in 1-2 ms slices, so after CATCH_TRIES misses, or once every feedback is marked, it
        # is killed wherever it is (the window itself is tested with an injected failure in
        # test_feedback_exactly_once.py).
        catch_and_kill(sender, watch.logged_not_marked, "between a feedback's events and mark",
                       required=False, give_up=all_marked)  # fmt: skip
        # What the sender finished (the kill may catch its first feedback, or its last)
        return sum(1 for b in feedback if (decisions.get(b["decision_id"]) or {}).get("feedback"))

    def decision_events(self, feedback: list[dict]) -> set[str]:
        """The ids of the events the decisions and their feedback logged."""
        suffixes = {"rating": "rating", "resolved": "resolution"}
        return (
            {f"{b['decision_id']}-message" for b in feedback}
            | {
                f"{b['decision_id']}-{suffix}"
                for b in feedback
                for field, suffix in suffixes.items()
                if field in b
            }
            | {
                article_event_id(b["decision_id"], "helpful", b["helpful_article_id"])
                for b in feedback
                if "helpful_article_id" in b
            }
        )


class FeedbackWatch:
    """Which decisions have feedback events in the log (as
    :func:`~tests.integration.shared_counters.feedback_in_log` counts them) and which of
    those the store has marked, each look reading only what is new: the log from where the
    last look stopped, the store only for decisions not seen marked yet (a mark stays). A
    catch looks hundreds of times while the process it freezes waits; reading the whole log
    and every decision each time made a look cost ~30 ms."""

    def __init__(self, log: EventLog, decisions: Any) -> None:
        self.log = log
        self.decisions = decisions
        self.next = [0] * log.num_partitions
        self.found: dict[str, dict[str, Any]] = {}
        self.logged: set[str] = set()
        self.marked: set[str] = set()

    def logged_not_marked(self) -> list[str]:
        """The decisions whose feedback events are in the log but whose mark is not in the
        store (the log is read first: a mark follows its events)."""
        for partition in range(self.log.num_partitions):
            while chunk := self.log.read(partition, self.next[partition], 5000):
                self.next[partition] = chunk[-1].offset + 1
                for record in chunk:
                    decision = add_feedback(self.found, decode_event(record.value))
                    if decision is not None:
                        self.logged.add(decision)
        pending = sorted(self.logged - self.marked)
        if pending:
            stored = self.decisions.get_many(pending)
            self.marked |= {d for d in pending if (stored.get(d) or {}).get("feedback")}
        return sorted(self.logged - self.marked)
