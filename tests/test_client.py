"""The Python client (sync and async) against a real uvicorn server on a free port."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

from tailorbot.api.schemas import FeaturesResponse, IngestResponse, ProfileResponse, Readiness
from tailorbot.api.server import EmbeddedServer
from tailorbot.client import (
    AsyncClient,
    AuthError,
    Client,
    InvalidRequest,
    NotFoundError,
    TailorbotError,
    UnavailableError,
)
from tailorbot.services.decisions.schemas import (
    ExperimentReport,
    FeedbackResponse,
    PersonalizeResponse,
)
from tests.api.support import event, message, wait_until
from tests.helpers import closed_port
from tests.services.decisions.conftest import save_model, settings_for

CARD = "my new card has still not arrived"
KEY = "client-test-key"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A server with the small intent model and an in-process stream worker."""
    data_dir = tmp_path_factory.mktemp("client")
    save_model(data_dir)
    running = EmbeddedServer(settings_for(data_dir, run_worker_in_server=True)).start()
    yield running.url
    running.stop()


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A server with an API key and no intent model yet."""
    data_dir = tmp_path_factory.mktemp("guarded")
    settings = settings_for(data_dir, api_key=KEY, run_worker_in_server=False)
    running = EmbeddedServer(settings).start()
    yield running.url
    running.stop()


def test_every_call_returns_a_typed_result(server: str) -> None:
    with Client(server) as tb:
        assert tb.healthy() is True
        ready = tb.ready()
        assert isinstance(ready, Readiness) and ready.ready
        profile = tb.put_user("ada", {"name": "Ada", "tier": "gold"})
        assert isinstance(profile, ProfileResponse) and profile.profile.tier == "gold"
        ingested = tb.send_events([event("session_started", "ada"), message("ada", "hello")])
        assert isinstance(ingested, IngestResponse) and ingested.accepted == 2

        decision = tb.personalize("ada", "s1", CARD, context={"channel": "web"})
        assert isinstance(decision, PersonalizeResponse)
        assert decision.intent.name == "card_arrival" and decision.articles
        assert "Ada" in decision.response.text
        asked = "Has your new card arrived yet?"
        reply = tb.personalize("ada", "s1", "it still hasn't", last_bot_message=asked)
        assert (reply.intent.name, reply.intent.follow_up) == ("card_arrival", "continuation")

        result = tb.feedback(decision.decision_id, rating=5, resolved=True, clicked_article_id=None)
        assert isinstance(result, FeedbackResponse) and result.applied and result.reward == 1.0
        assert tb.feedback(decision.decision_id, rating=1).applied is False

        report = tb.experiment()
        assert isinstance(report, ExperimentReport)
        assert report.arms["personalized"].feedback >= 1

        def fresh() -> FeaturesResponse | None:
            try:
                found = tb.features("ada")
            except NotFoundError:
                return None
            return found if "card_arrival" in found.features["recent_intents"] else None

        features = wait_until(fresh, "ada's features")
        assert isinstance(features, FeaturesResponse) and features.user_id == "ada"
        assert "message" in tb.schema()["event_types"]
        assert "tailorbot_decisions" in tb.metrics()

        tb.delete_user("ada")
        with pytest.raises(NotFoundError):
            tb.features("ada")


def test_errors_are_typed_with_the_servers_problems(server: str) -> None:
    with Client(server) as tb:
        with pytest.raises(NotFoundError) as unknown:
            tb.feedback("no-such-decision", rating=3)
        assert unknown.value.status == 404 and unknown.value.code == "not_found"
        assert "no-such-decision" in unknown.value.message
        with pytest.raises(NotFoundError):
            tb.features("nobody-at-all")

        with pytest.raises(InvalidRequest) as bad_events:
            tb.send_events([message("u1", "hi"), {"type": "message", "user_id": "u1"}])
        assert bad_events.value.status == 422
        assert {(p["index"], p["field"]) for p in bad_events.value.problems} >= {
            (1, "text"),
            (1, "session_id"),
        }
        partial = tb.send_events([message("u1", "hi"), {"type": "nope"}], partial=True)
        assert (partial.accepted, partial.rejected) == (1, 1)

        with pytest.raises(InvalidRequest) as empty:
            tb.personalize("u1", "s1", "")
        assert [p["field"] for p in empty.value.problems] == ["message"]
        with pytest.raises(InvalidRequest) as rating:
            tb.feedback("d1", rating=9)
        assert [p["field"] for p in rating.value.problems] == ["rating"]
        with pytest.raises(InvalidRequest):
            tb.put_user("u1", {"tier": ""})


def test_a_user_id_reaches_the_server_as_itself(server: str) -> None:
    """Characters that end or change a URL path never make a call name another user."""
    with Client(server) as tb:
        tb.put_user("victim", {"tier": "gold"})
        for crafted in ("victim?x", "victim#x", "other/../victim", "victim/"):
            with pytest.raises(InvalidRequest) as refused:
                tb.delete_user(crafted)
            assert [p["field"] for p in refused.value.problems] == ["user_id"], crafted
            with pytest.raises(InvalidRequest):
                tb.put_user(crafted, {"tier": "platinum"})
        assert tb.put_user("victim", {"tier": "gold"}).user_id == "victim"
        for dots in (".", ".."):  # valid ids, not path steps
            assert tb.put_user(dots, {"tier": "gold"}).user_id == dots
            tb.delete_user(dots)


def test_the_api_key_is_sent_and_refusals_are_auth_errors(guarded: str) -> None:
    with Client(guarded) as anonymous:
        assert anonymous.healthy()  # no key needed for the probes
        with pytest.raises(AuthError) as missing:
            anonymous.experiment()
        assert missing.value.status == 401
    with Client(guarded, api_key="wrong") as wrong, pytest.raises(AuthError) as refused:
        wrong.put_user("u1", {"tier": "gold"})
    assert refused.value.status == 403
    with Client(guarded, api_key=KEY) as keyed:
        assert keyed.put_user("u1", {"tier": "gold"}).user_id == "u1"
        with pytest.raises(UnavailableError) as no_model:
            keyed.personalize("u1", "s1", CARD)
        assert no_model.value.status == 503 and no_model.value.code == "no_model"


def test_an_unreachable_server_is_unavailable() -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    with Client(url, timeout=2.0) as tb:
        for call in (tb.healthy, tb.experiment, lambda: tb.personalize("u1", "s1", CARD)):
            with pytest.raises(UnavailableError) as caught:
                call()
            assert caught.value.status == 0 and caught.value.code == "unreachable"

    async def run() -> None:
        async with AsyncClient(url, timeout=2.0) as tb:
            with pytest.raises(UnavailableError):
                await tb.feedback("d1", rating=5)

    asyncio.run(run())


def test_the_async_client_makes_the_same_calls(server: str, guarded: str) -> None:
    async def run() -> dict[str, Any]:
        async with AsyncClient(server) as tb:
            assert await tb.healthy()
            assert (await tb.ready()).ready
            await tb.put_user("bo", {"name": "Bo"})
            assert (await tb.send_events([message("bo", "hi")])).accepted == 1
            decision = await tb.personalize("bo", "s2", "my top up failed", last_bot_message="")
            assert isinstance(decision, PersonalizeResponse)
            assert decision.intent.name == "top_up_failed"
            first = await tb.feedback(decision.decision_id, rating=4)
            again = await tb.feedback(decision.decision_id, rating=4)
            report = await tb.experiment()
            schema = await tb.schema()
            metrics = await tb.metrics()
            with pytest.raises(NotFoundError):
                await tb.feedback("no-such-decision", rating=1)
            with pytest.raises(InvalidRequest):
                await tb.send_events([{"type": "rating", "user_id": "bo"}])
            features = await _poll_features(tb, "bo")
            await tb.delete_user("bo")
            with pytest.raises(NotFoundError):
                await tb.features("bo")
        async with AsyncClient(guarded) as anonymous:
            with pytest.raises(AuthError):
                await anonymous.experiment()
        return {
            "first": first,
            "again": again,
            "report": report,
            "schema": schema,
            "metrics": metrics,
            "features": features,
        }

    out = asyncio.run(run())
    assert out["first"].applied and out["first"].reward == pytest.approx(0.75)
    assert not out["again"].applied
    assert isinstance(out["report"], ExperimentReport)
    assert "event_types" in out["schema"] and "tailorbot_" in out["metrics"]
    assert isinstance(out["features"], FeaturesResponse)
    assert "top_up_failed" in out["features"].features["recent_intents"]


async def _poll_features(tb: AsyncClient, user_id: str) -> FeaturesResponse:
    for _ in range(1500):  # the worker is fast; the bound only stops a hung test
        try:
            found = await tb.features(user_id)
        except NotFoundError:
            found = None
        if found is not None and found.features["recent_intents"]:
            return found
        await asyncio.sleep(0.02)
    raise AssertionError(f"no features for {user_id}")


def test_every_error_is_a_tailorbot_error() -> None:
    for cls in (InvalidRequest, AuthError, NotFoundError, UnavailableError):
        assert issubclass(cls, TailorbotError)
    error = InvalidRequest(422, "invalid_input", "bad", [{"field": "x"}])
    assert str(error) == "422 invalid_input: bad" and error.problems == [{"field": "x"}]
