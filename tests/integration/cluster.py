"""Real processes for the scale-out and outage tests: ``tailorbot`` commands, a private
``redis-server``, generated events, and the from-scratch check of every user's features.

Everything here starts real programs and talks to real servers; nothing stands in for one.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
import redis

from tailorbot.config import Settings
from tailorbot.events.codec import decode_event
from tailorbot.features.state import recompute
from tailorbot.features.view import feature_view
from tailorbot.log import EventLog
from tailorbot.store import FeatureRecord, Stores
from tests.helpers import IN_CI, require_server, wait_until

# The console script of the venv that runs the tests (pip puts it next to the interpreter).
TAILORBOT = Path(sys.executable).with_name("tailorbot")
STOP_WAIT_S = 20.0  # a process that ignores SIGTERM this long is killed (bound, not a check)
WAIT_S = 60.0  # bound on each wait for the workers (a hung test fails; no timing check)
SESSION_TIMEOUT_S = 1  # a killed member keeps its partitions until its session lapses
INTENTS = ("card_arrival", "lost_card", "top_up_failed", "exchange_rate")
# articles of the bundled knowledge base: the door refuses ids the KB does not have
ARTICLES = ("kb-verify-identity", "kb-age-limit", "kb-why-verify", "kb-activate-card")
KINDS = ("message", "message", "message", "rating", "resolution", "article_viewed",
         "article_feedback", "handoff", "session_started")  # fmt: skip
# Not part of a feature's definition: when and where the stored state was written.
WRITE_FIELDS = ("state_event_time", "state_updated_at")


# --- processes --------------------------------------------------------------------------


class Process:
    """A child process whose stdout and stderr go to a file (shown when a test fails)."""

    def __init__(self, args: Sequence[str | Path], env: dict[str, str], output: Path) -> None:
        self.args = [str(a) for a in args]
        self.output = output
        with output.open("ab") as sink:
            self.popen = subprocess.Popen(
                self.args, env=env, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True
            )

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def tail(self, chars: int = 3000) -> str:
        text = self.output.read_text(errors="replace") if self.output.exists() else ""
        return f"--- {' '.join(self.args[:3])} (pid {self.pid}) output ---\n{text[-chars:]}"

    def signal(self, signum: int) -> None:
        if self.alive():
            self.popen.send_signal(signum)

    def stop(self) -> int | None:
        """SIGTERM, wait, then SIGKILL this process and its group (it started the group)."""
        if self.alive():
            self.popen.send_signal(signal.SIGTERM)
            try:
                return self.popen.wait(STOP_WAIT_S)
            except subprocess.TimeoutExpired:
                os.killpg(self.pid, signal.SIGKILL)
        return self.popen.wait(STOP_WAIT_S)


def tailorbot_env(**settings: Any) -> dict[str, str]:
    """This environment without any ``TAILORBOT_*`` variable, plus ``settings`` as ones."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TAILORBOT_")}
    env.update({f"TAILORBOT_{name.upper()}": str(value) for name, value in settings.items()})
    return env


def require_redis_server_binary() -> None:
    """Skip without the ``redis-server`` program on a laptop; fail under CI=true."""
    if shutil.which("redis-server"):
        return
    message = "redis-server is not installed (the outage tests start their own)"
    if IN_CI:
        pytest.fail(message + " (CI=true: backend tests never skip)")
    pytest.skip(message)


class RedisServer:
    """A private ``redis-server`` on ``port`` (never the shared one on 6379).

    With ``appendonly`` its data goes to an append-only file in ``directory`` and survives
    a restart; without, a restarted server comes back empty.
    """

    def __init__(self, port: int, directory: Path, appendonly: bool = True) -> None:
        self.port = port
        self.directory = directory
        self.appendonly = appendonly
        self.process: Process | None = None
        directory.mkdir(parents=True, exist_ok=True)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        args = [
            "redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
            "--save", "", "--daemonize", "no", "--dir", str(self.directory),
            "--appendonly", "yes" if self.appendonly else "no",
        ]  # fmt: skip
        self.process = Process(args, dict(os.environ), self.directory / "redis-server.out")
        wait_until(self.answers, f"redis-server on port {self.port}", limit_s=20)
        require_server("the private redis-server", "127.0.0.1", self.port)

    def answers(self) -> bool:
        """True once the server answers PING (after it loaded its data)."""
        if self.process is None or not self.process.alive():
            raise AssertionError(f"redis-server exited\n{self.process and self.process.tail()}")
        client = redis.Redis(port=self.port, socket_timeout=1, socket_connect_timeout=1)
        try:
            return bool(client.ping())
        except redis.RedisError:  # not listening yet, or still loading the append-only file
            return False
        finally:
            client.close()

    def stop(self) -> None:
        """Shut down (SIGTERM: a clean shutdown that flushes the append-only file)."""
        if self.process is not None:
            self.process.stop()

    def pause(self) -> None:
        """Freeze the server: connections stay open but nothing is answered."""
        if self.process is not None:
            self.process.signal(signal.SIGSTOP)

    def resume(self) -> None:
        if self.process is not None:
            self.process.signal(signal.SIGCONT)


# --- consumer groups --------------------------------------------------------------------


def live_members(log: EventLog, group: str) -> list[str]:
    """The live members of ``group`` in the log's own bookkeeping (a read; renews nobody)."""
    from tailorbot.log.redis_streams import RedisStreamsEventLog
    from tailorbot.log.sqlite import SqliteEventLog

    if isinstance(log, SqliteEventLog):
        return log.groups.members(group)
    if isinstance(log, RedisStreamsEventLog):
        seconds, micros = log.client.time()
        now_ms = seconds * 1000 + micros // 1000
        members = log.client.zrangebyscore(log.group_key(group, "members"), f"({now_ms}", "+inf")
        return sorted(m.decode() for m in members)
    raise TypeError(f"no member listing for {log!r}")


def member_pids(members: Sequence[str]) -> set[int]:
    """Process ids of members named by default (``{host}-{pid}-{random}``)."""
    return {int(member.rsplit("-", 2)[1]) for member in members}


def lag(log: EventLog, settings: Settings) -> int:
    return sum(log.lag(settings.consumer_group).values())


# --- events -----------------------------------------------------------------------------


def make_events(n: int, users: int, seed: int, start: float, span_s: float, tag: str) -> list[dict]:
    """``n`` valid raw events (as a chatbot sends them) of ``users`` users between ``start``
    and ``start + span_s``, slightly out of order, each with a unique client ``event_id``."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        user = f"{tag}-u{rng.randrange(users)}"
        at = start + span_s * i / n + rng.uniform(-60.0, 0.0)
        kind = rng.choice(KINDS)
        fields: dict[str, Any] = {}
        if kind == "message":
            customer = rng.random() < 0.7
            fields = {"role": "customer" if customer else "bot", "text": f"message {i}"}
            if customer:
                fields["intent"] = rng.choice(INTENTS)
        elif kind == "rating":
            fields = {"score": rng.randint(1, 5)}
        elif kind == "resolution":
            fields = {"resolved": rng.random() < 0.6, "article_id": rng.choice(ARTICLES)}
        elif kind in ("article_viewed", "article_feedback"):
            fields = {"article_id": rng.choice(ARTICLES)}
            if kind == "article_feedback":
                fields["helpful"] = rng.random() < 0.5
        out.append({
            "type": kind,
            "event_id": f"{tag}-e{i}",
            "user_id": user,
            "session_id": f"{user}-s{i // 60}",
            "timestamp": _iso(at),
            "channel": rng.choice(("chat", "chat", "email")),
            **fields,
        })  # fmt: skip
    return out


def _iso(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(epoch)) + f".{int(epoch % 1 * 1e6):06d}Z"


def batches(items: Sequence[Any], size: int) -> list[Sequence[Any]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


# --- the from-scratch check ---------------------------------------------------------------


def logged_events(log: EventLog) -> dict[str, list[dict]]:
    """Every event in the log, decoded, by user."""
    by_user: dict[str, list[dict]] = {}
    for partition in range(log.num_partitions):
        for record in log.read_all(partition):
            event = decode_event(record.value)
            by_user.setdefault(event["user_id"], []).append(event)
    return by_user


def expected_view(user: str, events: list[dict], profile: Any, settings: Settings, now: float):
    """The feature view of ``user`` recomputed from scratch over ``events``, as of ``now``."""
    record = FeatureRecord(user, recompute(events, settings), 0, 0, 0.0, 0.0)
    return _without_write_fields(feature_view(record, profile, now))


def _without_write_fields(view: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in view.items() if k not in WRITE_FIELDS}


def assert_features_match_log(
    log: EventLog, stores: Stores, settings: Settings, now: float
) -> dict[str, int]:
    """Every user's stored features equal the from-scratch recomputation over the events in
    the log (at one fixed ``now``); returns each user's applied-event count."""
    totals = {}
    for user, events in logged_events(log).items():
        record = stores.features.get(user)
        assert record is not None, f"no feature record for {user}"
        profile = stores.profiles.get(user)
        got = _without_write_fields(feature_view(record, profile, now))
        assert got == expected_view(user, events, profile, settings, now), user
        totals[user] = got["events_total"]
    return totals
